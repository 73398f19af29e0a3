#include "echo.hpp"

#include "json.hpp"

#include <algorithm>
#include <array>
#include <cstdio>

namespace evald::bench {

namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD
constexpr std::string_view kSpmSpace = "\xE2\x96\x81";     // U+2581, SentencePiece's space

constexpr const char* kBytesArray = "exact bytes arrays";
constexpr const char* kBytePieces = "byte-fallback pieces <0xNN>";
constexpr const char* kBytesEscape = "OpenAI's \"bytes:\\xNN\" for tokens that are not whole characters";
constexpr const char* kSpmPieces = "SentencePiece pieces (U+2581 for a space)";
constexpr const char* kGpt2Pieces = "GPT-2 byte-level pieces (U+0120 for a space)";
constexpr const char* kLeadingSpace = "the tokenizer's added leading space";
constexpr const char* kLossy = "U+FFFD for tokens that are not whole characters (their byte spans are inferred)";

// Decodes one UTF-8 code point at s[i]; returns its length (0: invalid).
size_t utf8_next(std::string_view s, size_t i, uint32_t* cp) {
  auto c = static_cast<unsigned char>(s[i]);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  uint32_t v = n == 1 ? c : n == 2 ? c & 0x1F : n == 3 ? c & 0x0F : c & 0x07;
  for (size_t k = 1; k < n; ++k) {
    auto d = static_cast<unsigned char>(s[i + k]);
    if ((d & 0xC0) != 0x80) return 0;
    v = (v << 6) | (d & 0x3F);
  }
  *cp = v;
  return n;
}

// GPT-2's byte-to-unicode table, inverted: code point -> byte (-1: not a byte-level character).
const std::array<int, 512>& gpt2_bytes() {
  static const std::array<int, 512> table = [] {
    std::array<int, 512> t;
    t.fill(-1);
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      t[size_t(printable ? b : 256 + n++)] = b;
    }
    return t;
  }();
  return table;
}

std::optional<std::string> gpt2_decode(std::string_view s) {
  std::string out;
  bool differs = false;
  for (size_t i = 0; i < s.size();) {
    uint32_t cp = 0;
    size_t n = utf8_next(s, i, &cp);
    if (n == 0 || cp >= 512 || gpt2_bytes()[cp] < 0) return std::nullopt;
    differs = differs || cp >= 128;
    out.push_back(char(gpt2_bytes()[cp]));
    i += n;
  }
  if (!differs) return std::nullopt;  // plain ASCII reads the same either way
  return out;
}

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// "bytes:\xe2\x80" -> the bytes; text between escapes is taken as it is.
std::optional<std::string> escaped_bytes(std::string_view s) {
  if (!s.starts_with("bytes:")) return std::nullopt;
  std::string out;
  for (size_t i = 6; i < s.size();) {
    if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] == 'x' && hex(s[i + 2]) >= 0 && hex(s[i + 3]) >= 0) {
      out.push_back(char(hex(s[i + 2]) * 16 + hex(s[i + 3])));
      i += 4;
    } else {
      out.push_back(s[i++]);
    }
  }
  return out;
}

struct Spelling {
  std::string bytes;
  const char* convention;  // nullptr: the text as it is
};

// Every way of reading a token's text as bytes, the plain reading first.
std::vector<Spelling> spellings(const EchoToken& t) {
  std::vector<Spelling> out;
  if (t.bytes) out.push_back({*t.bytes, kBytesArray});
  out.push_back({t.text, nullptr});
  const std::string& s = t.text;
  if (s.size() == 6 && s.starts_with("<0x") && s[5] == '>' && hex(s[3]) >= 0 && hex(s[4]) >= 0)
    out.push_back({std::string(1, char(hex(s[3]) * 16 + hex(s[4]))), kBytePieces});
  if (auto b = escaped_bytes(s)) out.push_back({*b, kBytesEscape});
  if (s.find(kSpmSpace) != std::string::npos) {
    std::string r;
    for (size_t i = 0; i < s.size();) {
      if (s.compare(i, kSpmSpace.size(), kSpmSpace) == 0) {
        r.push_back(' ');
        i += kSpmSpace.size();
      } else {
        r.push_back(s[i++]);
      }
    }
    out.push_back({r, kSpmPieces});
  }
  if (auto g = gpt2_decode(s)) out.push_back({*g, kGpt2Pieces});
  return out;
}

bool all_replacement(std::string_view s) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); i += kReplacement.size())
    if (s.compare(i, kReplacement.size(), kReplacement) != 0) return false;
  return true;
}

// A BOS-like token: "<s>", "<|begin_of_text|>", "[CLS]", "<bos>".
bool looks_special(std::string_view s) {
  return s.size() >= 3 && ((s.front() == '<' && s.back() == '>') || (s.front() == '[' && s.back() == ']'));
}

std::string quoted(std::string_view s, size_t max = 24) {
  std::string out = "\"";
  size_t n = 0;
  for (char c : s) {
    if (n++ == max) {
      out += "...";
      break;
    }
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') out += std::string("\\") + c;
    else if (u < 0x20) {
      char b[8];
      std::snprintf(b, sizeof b, "\\x%02x", u);
      out += b;
    } else out += c;
  }
  return out + "\"";
}

void note(EchoAlignment& a, const char* convention) {
  if (convention && std::find(a.conventions.begin(), a.conventions.end(), convention) == a.conventions.end())
    a.conventions.push_back(convention);
}

// The spelling of t that the prompt has at pos (first == the whole first token: a leading
// space the prompt lacks may be the tokenizer's); the bytes it covers, or nullopt.
std::optional<size_t> match_at(const EchoToken& t, std::string_view prompt, size_t pos, bool first, EchoAlignment& a) {
  auto sp = spellings(t);
  for (auto& s : sp)
    if (prompt.substr(pos).starts_with(s.bytes)) {
      note(a, s.convention);
      return s.bytes.size();
    }
  if (first)
    for (auto& s : sp)
      if (s.bytes.starts_with(' ') && !prompt.starts_with(' ') && prompt.substr(pos).starts_with(std::string_view(s.bytes).substr(1))) {
        note(a, s.convention);
        note(a, kLeadingSpace);
        return s.bytes.size() - 1;
      }
  return std::nullopt;
}

std::string known_conventions() {
  return std::string("decoded text, ") + kBytesArray + ", " + kBytePieces + ", " + kBytesEscape + ", " + kSpmPieces + ", " + kGpt2Pieces +
         ", a leading BOS token with no logprob, " + kLeadingSpace + ", " + kLossy;
}

}  // namespace

namespace {

// Tokens generated after the echoed prompt (max_tokens > 0) come last; usage says how many.
// Dropping them here keeps a generated token that reads like the prompt's last ones (a run of
// U+FFFD) from being taken for part of the prompt.
void drop_generated(EchoReply& r) {
  if (r.completion_tokens > 0 && size_t(r.completion_tokens) < r.tokens.size()) r.tokens.resize(r.tokens.size() - size_t(r.completion_tokens));
}

}  // namespace

Result<EchoReply> read_echo_reply(std::string_view body, std::string_view prompt) {
  text::Json j;
  text::JsonError e;
  if (!text::parse_json(body, &j, &e))
    return Status::error("response is not JSON (byte " + std::to_string(e.offset) + ": " + e.message + "): " + quoted(body, 80));
  EchoReply r;
  if (auto* u = j.find("usage")) {
    if (auto* p = u->find("prompt_tokens"); p && p->is_uint()) r.prompt_tokens = int64_t(p->as_uint());
    if (auto* c = u->find("completion_tokens"); c && c->is_uint()) r.completion_tokens = int64_t(c->as_uint());
  }
  auto* ch = j.find("choices");
  if (!ch || !ch->is_array() || ch->items().empty()) return Status::error("response has no choices[0]: " + quoted(body, 80));
  auto& c0 = ch->items()[0];
  auto* text = c0.find("text");
  if (!text || !text->is_string()) return Status::error("response has no choices[0].text string: " + quoted(body, 80));
  auto* lp = c0.find("logprobs");
  if (!lp || !lp->is_object()) {
    r.no_logprobs = "choices[0].logprobs is missing or null";
    return r;
  }
  if (!text->str().starts_with(prompt)) {
    r.no_logprobs = "choices[0].text does not start with the prompt: the endpoint ignores echo, so its logprobs are the generated tokens'";
    return r;
  }
  auto number = [](const text::Json* v) -> std::optional<double> {
    if (v && v->is_number()) return v->as_double();
    return std::nullopt;
  };
  if (auto* content = lp->find("content"); content && content->is_array()) {
    for (size_t i = 0; i < content->items().size(); ++i) {
      auto& c = content->items()[i];
      std::string where = "choices[0].logprobs.content[" + std::to_string(i) + "]";
      auto* tok = c.find("token");
      if (!tok || !tok->is_string()) return Status::error(where + ".token: expected a string");
      EchoToken t{tok->str(), std::nullopt, number(c.find("logprob"))};
      if (auto* b = c.find("bytes"); b && b->is_array()) {
        std::string bytes;
        for (auto& x : b->items()) {
          if (!x.is_uint() || x.as_uint() > 255) return Status::error(where + ".bytes: expected numbers 0-255");
          bytes.push_back(char(x.as_uint()));
        }
        t.bytes = std::move(bytes);
      }
      r.tokens.push_back(std::move(t));
    }
    drop_generated(r);
    return r;
  }
  auto* toks = lp->find("tokens");
  auto* lps = lp->find("token_logprobs");
  if (!toks || !toks->is_array()) return Status::error("choices[0].logprobs.tokens: expected an array");
  if (!lps || !lps->is_array()) return Status::error("choices[0].logprobs.token_logprobs: expected an array");
  if (toks->items().size() != lps->items().size())
    return Status::error("choices[0].logprobs: " + std::to_string(toks->items().size()) + " tokens but " + std::to_string(lps->items().size()) +
                         " token_logprobs");
  for (size_t i = 0; i < toks->items().size(); ++i) {
    auto& tok = toks->items()[i];
    std::string where = "choices[0].logprobs.tokens[" + std::to_string(i) + "]";
    if (!tok.is_string()) return Status::error(where + ": expected a string, got " + tok.type_name() + " (token ids cannot be read against the prompt)");
    if (tok.str().starts_with("token_id:"))
      return Status::error(where + " is " + quoted(tok.str()) +
                           ": the server sends token ids (vLLM --return-tokens-as-token-ids), which cannot be read against the prompt");
    r.tokens.push_back({tok.str(), std::nullopt, number(&lps->items()[i])});
  }
  drop_generated(r);
  return r;
}

Result<EchoAlignment> align_echo(const std::vector<EchoToken>& tokens, std::string_view prompt) {
  EchoAlignment a;
  size_t pos = 0, i = 0;
  auto fail = [&](const std::string& why) {
    return Status::error("the echoed tokens do not spell the prompt: " + why + " (readings known: " + known_conventions() +
                         "); this server's echo convention is not one evald reads, so its log-likelihoods are not used");
  };
  if (!tokens.empty() && !tokens[0].logprob && looks_special(tokens[0].text) && !prompt.starts_with(tokens[0].text)) {
    a.end.push_back(0);
    a.exact.push_back(true);
    a.conventions.push_back("a leading special token " + quoted(tokens[0].text) + " with no logprob (BOS)");
    i = 1;
  }
  const size_t first = i;
  while (pos < prompt.size() && i < tokens.size()) {
    if (auto n = match_at(tokens[i], prompt, pos, i == first, a)) {
      pos += *n;
      a.end.push_back(pos);
      a.exact.push_back(true);
      ++i;
      continue;
    }
    if (!all_replacement(tokens[i].text) || static_cast<unsigned char>(prompt[pos]) < 0x80)
      return fail("token " + std::to_string(i) + " " + quoted(tokens[i].text) + " where the prompt has " + quoted(prompt.substr(pos, 12)) +
                  " at byte " + std::to_string(pos));
    // A run of U+FFFD tokens covers non-ASCII bytes up to where the next token spells the
    // prompt again; each token of the run gets at least one byte.
    size_t j = i;
    while (j < tokens.size() && all_replacement(tokens[j].text)) ++j;
    size_t limit = pos;
    while (limit < prompt.size() && static_cast<unsigned char>(prompt[limit]) >= 0x80) ++limit;
    std::optional<size_t> q;
    for (size_t c = pos + (j - i); c <= limit && !q; ++c) {
      if (c < prompt.size() && (static_cast<unsigned char>(prompt[c]) & 0xC0) == 0x80) continue;  // inside a character
      EchoAlignment scratch;
      // The run may also end with the prompt while tokens follow: those were generated (an echo
      // request with max_tokens > 0, config logprob_max_tokens), so a prompt ending in a character
      // echoed as U+FFFD is no error.
      if (j == tokens.size() ? c == limit : c == prompt.size() || match_at(tokens[j], prompt, c, false, scratch).has_value()) q = c;
    }
    if (!q)
      return fail("tokens " + std::to_string(i) + " to " + std::to_string(j - 1) + " are U+FFFD and cannot be placed against the prompt's " +
                  quoted(prompt.substr(pos, 12)) + " at byte " + std::to_string(pos));
    note(a, kLossy);
    for (size_t k = i; k < j; ++k) {
      a.end.push_back(k + 1 == j ? *q : pos + (k - i + 1));
      a.exact.push_back(k + 1 == j);
    }
    pos = *q;
    i = j;
  }
  if (pos < prompt.size())
    return fail("the " + std::to_string(tokens.size()) + " echoed tokens spell only the first " + std::to_string(pos) + " of the prompt's " +
                std::to_string(prompt.size()) + " bytes");
  a.prompt_tokens = i;
  return a;
}

Result<ContinuationScore> score_continuation(const std::vector<EchoToken>& tokens, const EchoAlignment& a, size_t context_tokens,
                                             size_t context_bytes) {
  if (context_tokens == 0) return Status::error("the context has no tokens");
  if (context_tokens >= a.prompt_tokens)
    return Status::error("the context alone is " + std::to_string(context_tokens) + " tokens and context + continuation " +
                         std::to_string(a.prompt_tokens) + ": the continuation has no tokens of its own (it merged into the context's last token)");
  if (!a.exact[context_tokens - 1])
    return Status::error("the context's last token is inside a run of U+FFFD tokens: the boundary cannot be placed");
  ContinuationScore s;
  s.merged = a.end[context_tokens - 1] != context_bytes;
  for (size_t k = context_tokens; k < a.prompt_tokens; ++k) {
    if (!tokens[k].logprob) return Status::error("token " + std::to_string(k) + " " + quoted(tokens[k].text) + " of the continuation has no logprob");
    s.logprob += *tokens[k].logprob;
    s.texts.push_back(tokens[k].text);
  }
  s.tokens = a.prompt_tokens - context_tokens;
  return s;
}

bool token_reads_as(const EchoToken& token, std::string_view text) {
  for (auto& s : spellings(token))
    if (s.bytes == text) return true;
  return false;
}

size_t context_split(std::string_view context) {
  size_t n = context.size();
  while (n > 0 && (context[n - 1] == ' ' || context[n - 1] == '\t' || context[n - 1] == '\n' || context[n - 1] == '\r')) --n;
  return n;
}

Result<size_t> token_count_from_json(std::string_view body) {
  text::Json j;
  text::JsonError e;
  if (!text::parse_json(body, &j, &e)) return Status::error("tokenize response is not JSON (byte " + std::to_string(e.offset) + ": " + e.message + ")");
  if (j.is_array()) return j.items().size();
  if (!j.is_object()) return Status::error("tokenize response is a JSON " + std::string(j.type_name()) + ", not an object or array");
  if (auto* c = j.find("count"); c && c->is_uint()) return size_t(c->as_uint());
  if (auto* t = j.find("tokens"); t && t->is_array()) return t->items().size();
  return Status::error("tokenize response has neither \"count\" nor a \"tokens\" array");
}

}  // namespace evald::bench
