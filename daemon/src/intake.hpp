// Intake: records streamed in through the control API for one round and channel (user votes,
// panel score rows) while the operator holds the channel's window open. Each record has an id
// and is stored once: a record sent again with the same content is counted as a duplicate,
// one with other content under a used id is rejected, so a client may resend a batch it is
// unsure about. Plugins read a channel's records through the host's intake_scan.
//
// Keys in Family::Intake: "w/<competition>/<round>/<channel>" holds the window, and
// "r/<competition>/<round>/<channel>/<id>" each record (msgpack map, with "received_at").
// Thread-safe; every change lands in one write with its audit entry.
#pragma once

#include "audit.hpp"
#include "store.hpp"

#include <evald/value.hpp>

#include <mutex>
#include <string>

namespace evald::daemon {

// The store key prefix of a channel's records.
std::string intake_record_prefix(const std::string& competition, const std::string& round, const std::string& channel);

class Intake {
 public:
  Intake(Store& store, AuditLog& audit) : store_(store), audit_(audit) {}

  // Opens (or reopens) the window. closes, when not empty, is an ISO 8601 time after which
  // submissions are refused. Refused when the round does not exist or the window is open.
  Result<Value> open(const std::string& competition, const std::string& round, const std::string& channel,
                     const std::string& closes, const std::string& actor);
  // Closes an open window; records already stored stay.
  Result<Value> close(const std::string& competition, const std::string& round, const std::string& channel,
                      const std::string& actor);
  // Stores records (an array of maps, each with a string "id") while the window is open.
  // Returns {accepted, duplicates, rejected: [{index, id, reason}], count}. Records that
  // fail validation are rejected one by one; the others are stored.
  Result<Value> submit(const std::string& competition, const std::string& round, const std::string& channel,
                       const Value& records, const std::string& actor);
  // Records an operator's decision about an entrant of the round (read by the tally from the
  // "decisions" channel): decision is advance, eliminate, disqualify, count_missing_as_zero or
  // accept_inconclusive; reason is required and goes into the audit log with the actor. Needs
  // no open window: decisions are not votes. Returns the stored record.
  Result<Value> record_decision(const std::string& competition, const std::string& round, const std::string& entrant,
                                const std::string& decision, const std::string& reason, const std::string& actor);
  // The windows of a round (one channel when channel is not empty), with record counts.
  Result<Value> status(const std::string& competition, const std::string& round, const std::string& channel) const;

 private:
  Result<Value> window(const std::string& key) const;

  Store& store_;
  AuditLog& audit_;
  mutable std::mutex mu_;
};

}  // namespace evald::daemon
