// Tensor names of the common naming schemes map to the same components and canonical roles.
#include <gtest/gtest.h>

#include "components.hpp"

using evald::prov::ComponentRules;
using evald::prov::TensorRole;

namespace {

struct Case {
  const char* name;
  const char* component;
  const char* role;
  int layer;
};

TEST(ComponentRules, BuiltInNamingSchemes) {
  const Case cases[] = {
      // Llama / Qwen2 / Qwen2.5 / Gemma (Hugging Face)
      {"model.layers.7.self_attn.q_proj.weight", "llm", "attn.q.weight", 7},
      {"model.layers.7.self_attn.q_proj.bias", "llm", "attn.q.bias", 7},
      {"model.layers.0.mlp.down_proj.weight", "llm", "mlp.down.weight", 0},
      {"model.layers.3.pre_feedforward_layernorm.weight", "llm", "norm.pre_mlp.weight", 3},
      {"model.norm.weight", "llm", "norm.final.weight", -1},
      {"model.embed_tokens.weight", "embeddings", "embed", -1},
      {"lm_head.weight", "embeddings", "head", -1},
      // EXAONE-like
      {"transformer.h.12.attn.attention.k_proj.weight", "llm", "attn.k.weight", 12},
      {"transformer.h.12.mlp.c_fc_0.weight", "llm", "mlp.gate.weight", 12},
      {"transformer.h.12.mlp.c_proj.weight", "llm", "mlp.down.weight", 12},
      {"transformer.h.12.ln_2.weight", "llm", "norm.mlp.weight", 12},
      {"transformer.wte.weight", "embeddings", "embed", -1},
      {"transformer.ln_f.weight", "llm", "norm.final.weight", -1},
      // Qwen2.5-VL
      {"visual.blocks.5.attn.qkv.weight", "vision", "attn.qkv.weight", 5},
      {"visual.blocks.5.mlp.gate_proj.weight", "vision", "mlp.gate.weight", 5},
      {"visual.merger.mlp.0.weight", "vision", "projector:visual.merger.mlp.0.weight", -1},
      {"visual.patch_embed.proj.weight", "vision", "visual.patch_embed.proj.weight", -1},
      // LLaVA / CLIP
      {"language_model.model.layers.1.self_attn.o_proj.weight", "llm", "attn.o.weight", 1},
      {"language_model.lm_head.weight", "embeddings", "head", -1},
      {"vision_tower.vision_model.encoder.layers.0.mlp.fc1.weight", "vision", "mlp.up.weight", 0},
      {"vision_tower.vision_model.encoder.layers.0.self_attn.out_proj.weight", "vision", "attn.o.weight", 0},
      {"multi_modal_projector.linear_1.weight", "vision", "projector:multi_modal_projector.linear_1.weight", -1},
      // GGUF (llama.cpp)
      {"blk.3.attn_q.weight", "llm", "attn.q.weight", 3},
      {"blk.3.ffn_down.weight", "llm", "mlp.down.weight", 3},
      {"token_embd.weight", "embeddings", "embed", -1},
      {"output.weight", "embeddings", "head", -1},
      {"output_norm.weight", "llm", "norm.final.weight", -1},
      {"v.blk.0.attn_q.weight", "vision", "attn.q.weight", 0},
      // Unknown
      {"some.adapter.weight", "other", "some.adapter.weight", -1},
  };
  ComponentRules rules;
  for (const Case& c : cases) {
    TensorRole r = rules.classify(c.name);
    EXPECT_EQ(r.component, c.component) << c.name;
    EXPECT_EQ(r.role, c.role) << c.name;
    EXPECT_EQ(r.layer, c.layer) << c.name;
  }
  // Output projections compare their columns (units), input projections their rows.
  EXPECT_EQ(rules.classify("model.layers.0.mlp.down_proj.weight").units, TensorRole::Units::Cols);
  EXPECT_EQ(rules.classify("model.layers.0.mlp.up_proj.weight").units, TensorRole::Units::Rows);
  EXPECT_EQ(rules.classify("some.adapter.weight").units, TensorRole::Units::Both);
}

TEST(ComponentRules, ConfigRulesComeFirstAndAreChecked) {
  ComponentRules rules;
  EXPECT_EQ(rules.add({{"^adapter\\.", "vision"}}), "");
  EXPECT_EQ(rules.classify("adapter.proj.weight").component, "vision");
  EXPECT_NE(rules.add({{"([", "llm"}}).find("invalid regular expression"), std::string::npos);
  EXPECT_NE(rules.add({{"x", "audio"}}).find("unknown component \"audio\""), std::string::npos);
}

}  // namespace
