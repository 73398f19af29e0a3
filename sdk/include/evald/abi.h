/* The C boundary between the evald daemon and a plugin library.
 *
 * Only C types and byte spans cross it, so a plugin built with another compiler (or another
 * C++ standard library) still loads. Structured data (configs, jobs, message payloads) crosses
 * as msgpack bytes; the header-only C++ API in <evald/plugin.hpp> encodes and decodes them.
 *
 * Versioning: the daemon refuses a plugin whose abi_major differs from EVALD_ABI_MAJOR, or
 * whose abi_minor is newer than the daemon's. Minor versions only append fields at the end of
 * these structs; struct_size tells which fields a peer has.
 */
#ifndef EVALD_ABI_H
#define EVALD_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EVALD_ABI_MAJOR 1
#define EVALD_ABI_MINOR 1

/* The name under which a plugin library exports its entry point (see EVALD_PLUGIN). */
#define EVALD_PLUGIN_ENTRY "evald_plugin_entry"

/* A borrowed span of bytes: valid only for the duration of the call it is passed to. */
typedef struct evald_bytes {
  const uint8_t* data;
  size_t size;
} evald_bytes;

/* Filled by the callee on failure. Fixed size so nothing is allocated across the boundary;
 * longer messages are truncated. */
typedef struct evald_error {
  char message[2048];
} evald_error;

/* Opaque to plugins: the daemon's handle for one plugin instance or one job. */
typedef struct evald_ctx evald_ctx;

enum evald_log_level {
  EVALD_LOG_TRACE = 0,
  EVALD_LOG_DEBUG = 1,
  EVALD_LOG_INFO = 2,
  EVALD_LOG_WARN = 3,
  EVALD_LOG_ERROR = 4
};

/* Return codes of host and plugin functions. */
enum evald_rc {
  EVALD_OK = 0,
  EVALD_NOT_FOUND = 1,
  EVALD_ERR = -1,
  EVALD_ERR_INVALID = -2, /* called where it does not apply, e.g. emit outside a job */
  EVALD_ERR_IO = -3
};

/* Receives a value the host returns; the span is valid only during the call. */
typedef void (*evald_sink_fn)(void* sink_ctx, evald_bytes value);

/* Functions the daemon offers a plugin. Every function is thread-safe for distinct ctx
 * values; a ctx is used by one thread at a time. */
typedef struct evald_host_api {
  uint32_t abi_major;
  uint32_t abi_minor;
  uint32_t struct_size;
  /* Writes one log line attributed to the plugin (and job, for a job ctx). */
  void (*log)(evald_ctx* ctx, int level, const char* msg, size_t len);
  /* Emits one output message of a job: kind, schema version and a msgpack payload.
   * EVALD_ERR_INVALID outside a job. The host copies everything before returning. */
  int (*emit)(evald_ctx* ctx, const char* kind, size_t kind_len, uint32_t schema_version,
              evald_bytes payload);
  /* Key-value state scoped to the plugin (its name), durable in the daemon's store.
   * kv_get calls sink once with the value and returns EVALD_OK, or EVALD_NOT_FOUND. */
  int (*kv_get)(evald_ctx* ctx, evald_bytes key, evald_sink_fn sink, void* sink_ctx);
  int (*kv_put)(evald_ctx* ctx, evald_bytes key, evald_bytes value);
  int (*kv_delete)(evald_ctx* ctx, evald_bytes key);
  /* Non-zero once the job should stop (timeout, shutdown); plugins poll it in long loops. */
  int (*cancelled)(evald_ctx* ctx);
  /* Reports progress of a long job (done out of total, any unit). */
  void (*progress)(evald_ctx* ctx, double done, double total);
  /* NUL-terminated directory paths owned by the host, valid while ctx lives: scratch is
   * removed after the job, artifacts are kept with the run. */
  const char* (*scratch_dir)(evald_ctx* ctx);
  const char* (*artifact_dir)(evald_ctx* ctx);
  /* Since ABI 1.1. Records streamed in through the control API (`evalctl intake submit`) for
   * the job's round on one channel: sink is called once per record (a msgpack map with its
   * "id" and the daemon's "received_at"), in id order. EVALD_ERR_INVALID outside a job,
   * EVALD_ERR_IO when the store cannot be read. A plugin checks struct_size before calling. */
  int (*intake_scan)(evald_ctx* ctx, const char* channel, size_t channel_len, evald_sink_fn sink, void* sink_ctx);
} evald_host_api;

/* What a plugin library exports. All strings are static, NUL-terminated, UTF-8.
 *
 * Lifecycle, per pipeline stage of a run: validate_config (also on `evald --validate`),
 * create, start, then process (per-entrant jobs) or finish (barrier jobs, given every
 * upstream result of the run) any number of times from one thread at a time, then stop
 * and destroy. Functions returning int return EVALD_OK or fill err and return non-zero. */
typedef struct evald_plugin_api {
  uint32_t abi_major;
  uint32_t abi_minor;
  uint32_t struct_size;
  const char* name;
  const char* version;
  const char* description;
  /* msgpack array of key specs: {key, type, description, required, default?, min?, max?,
   * choices?}. The daemon checks configs against it before the plugin sees them. */
  evald_bytes config_schema;
  /* Semantic checks beyond the schema; config is msgpack with defaults applied. */
  int (*validate_config)(evald_bytes config, evald_error* err);
  /* Returns an instance or NULL with err filled. ctx lives until destroy. */
  void* (*create)(const evald_host_api* host, evald_ctx* ctx, evald_bytes config,
                  evald_error* err);
  int (*start)(void* instance, evald_error* err);
  /* job is msgpack: {envelope, inputs: [message...], entrant, failed_upstream: [...]}. */
  int (*process)(void* instance, evald_ctx* job_ctx, evald_bytes job, evald_error* err);
  int (*finish)(void* instance, evald_ctx* job_ctx, evald_bytes job, evald_error* err);
  /* Safe to call without start and more than once. */
  void (*stop)(void* instance);
  void (*destroy)(void* instance);
} evald_plugin_api;

/* The exported entry point's type. */
typedef const evald_plugin_api* (*evald_plugin_entry_fn)(void);

#ifdef __cplusplus
}
#endif

#endif /* EVALD_ABI_H */
