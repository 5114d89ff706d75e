// Named failpoints, compiled in and switched at run time by AGENTBUS_FAILPOINTS, e.g.
//   AGENTBUS_FAILPOINTS=after_claim=exit            die (_exit 137) right after a claim
//   AGENTBUS_FAILPOINTS=before_stamp=kill,after_claim=stop
// Actions: exit (_exit(137), no cleanup), kill (SIGKILL self), stop (SIGSTOP self: a producer
// that is alive but stuck), sleep:<ms>. A failpoint may be limited to the Nth hit with
// `name@N=action` (1-based). Points: before_stamp (between winning the claim and stamping
// its header), after_claim (header stamped, body not written), before_commit (body written),
// scratch_mid_write (a scratchpad writer with half of a value's blocks written),
// group_before_receipt (a group worker that did its work, no receipt yet), group_before_ack
// (receipt recorded, ack not sent), group_mid_dispatch (a group member holding a delivery it is
// handing out), group_mid_reclaim (a group member holding an event it is taking over),
// claim_after_cas (a claim-table entry won by CAS, nothing written), claim_mid_write (its key
// written, the rest not), claim_before_ready (every field written, not published; see
// shm/claim_table.hpp), bridge_after_ship (a batch in Redis, the reader not committed),
// bridge_after_spool_write (a batch fsynced into the spool, not committed),
// bridge_after_spool_shipped (the spool in Redis, not cleared), bridge_after_import_publish
// (a remote entry published here, the in-checkpoint not written), exclusive_before_write (an
// exclusive writer inside its fast path, nothing written), exclusive_before_commit (its record
// written, not stamped), exclusive_before_tail (stamped committed, `tail` not yet moved past it).
// When the variable is unset, each check is one relaxed load of a process-local flag.
#pragma once

#include <atomic>
#include <string_view>

namespace agentbus::shm {

enum class Failpoint {
  before_stamp, after_claim, before_commit, scratch_mid_write, group_before_receipt, group_before_ack,
  group_mid_dispatch, group_mid_reclaim, claim_after_cas, claim_mid_write, claim_before_ready,
  bridge_after_ship, bridge_after_spool_write, bridge_after_spool_shipped, bridge_after_import_publish,
  exclusive_before_write, exclusive_before_commit, exclusive_before_tail, count_
};

namespace detail {
extern std::atomic<bool> failpoints_armed;
void failpoint_hit(Failpoint point) noexcept;
}  // namespace detail

// Replaces the configuration with `spec` (same syntax as the variable); for tests.
void set_failpoints(std::string_view spec);

inline void failpoint(Failpoint point) noexcept {
  if (detail::failpoints_armed.load(std::memory_order_relaxed)) [[unlikely]]
    detail::failpoint_hit(point);
}

}  // namespace agentbus::shm
