// fuzz_msgpack: evald::msgpack::decode on arbitrary bytes, under the default limits and
// under tight ones. Properties checked when a decode succeeds:
//   * encode(v) decodes again (same limits, input size aside) to a value equal to v, and
//     re-encoding that gives the same bytes (encoding is canonical and round-trips);
//   * decode_one's prefix is itself a whole value equal to the one decode_one gave;
//   * what the tight limits accept, the default limits accept too, with the same result;
//   * msgpack::validate (the check without building Values) accepts exactly what decode
//     accepts, under both limits.
#include "fuzz_common.hpp"

#include <evald/value.hpp>

#include <cstdint>
#include <limits>

using evald::Bytes;
using evald::Value;
namespace mp = evald::msgpack;
using evald::fuzz::same_value;

namespace {

const mp::Limits kDefault{};
const mp::Limits kTight{/*max_input=*/4096, /*max_depth=*/6, /*max_string=*/64, /*max_elements=*/16};

void round_trip(const Value& v, const mp::Limits& lim, const uint8_t* data, size_t size) {
  Bytes e1 = mp::encode(v);
  mp::Limits relaxed = lim;
  relaxed.max_input = std::numeric_limits<size_t>::max();  // a float32 re-encodes as 9 bytes
  auto v2 = mp::decode(e1, relaxed);
  FUZZ_CHECK(v2.ok(), "re-encoded value does not decode: %s (input %s)", v2.error().c_str(),
             evald::fuzz::hex_prefix(data, size).c_str());
  FUZZ_CHECK(same_value(v, *v2), "decode(encode(v)) != v (input %s)", evald::fuzz::hex_prefix(data, size).c_str());
  Bytes e2 = mp::encode(*v2);
  FUZZ_CHECK(e1 == e2, "encoding is not canonical (input %s)", evald::fuzz::hex_prefix(data, size).c_str());
  (void)evald::to_json(v);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto def = mp::decode(data, size, kDefault);
  if (def) round_trip(*def, kDefault, data, size);
  else FUZZ_CHECK(!def.error().empty(), "decode failed without a message");

  auto tight = mp::decode(data, size, kTight);
  if (tight) {
    round_trip(*tight, kTight, data, size);
    FUZZ_CHECK(def.ok() && same_value(*def, *tight), "tight limits accept what the defaults refuse");
  }

  for (const mp::Limits* lim : {&kDefault, &kTight}) {
    bool decoded = lim == &kDefault ? def.ok() : tight.ok();
    auto st = mp::validate(data, size, *lim);
    FUZZ_CHECK(st.ok() == decoded, "validate %s what decode %s (%s limits): %s / input %s",
               st.ok() ? "accepts" : "refuses", decoded ? "accepts" : "refuses",
               lim == &kDefault ? "default" : "tight",
               st.ok() ? (lim == &kDefault ? def.error() : tight.error()).c_str() : st.message().c_str(),
               evald::fuzz::hex_prefix(data, size).c_str());
  }

  // decode_one stops after the first value: that prefix must decode whole, to the same value.
  mp::Decoder d(data, size, kDefault);
  auto one = d.decode_one();
  if (one) {
    FUZZ_CHECK(d.offset() >= 1 && d.offset() <= size, "offset %zu outside input of %zu", d.offset(), size);
    auto prefix = mp::decode(data, d.offset(), kDefault);
    FUZZ_CHECK(prefix.ok() && same_value(*one, *prefix), "decode_one prefix does not decode alone");
    FUZZ_CHECK(def.ok() == (d.offset() == size), "decode_all and decode_one disagree on trailing bytes");
  } else {
    FUZZ_CHECK(!def.ok(), "decode_one fails where decode succeeds");
  }
  return 0;
}
