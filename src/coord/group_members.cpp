// The member table of a consumer group: joining (a claim-table entry per name, held by one
// live actor and kept by one owner), releasing, and judging whether a member is still there
// to finish what it started. See consumer_group_impl.hpp.
#include "coord/consumer_group_impl.hpp"

#include "shm/claim_table.hpp"
#include "shm/hash.hpp"
#include "shm/process.hpp"

#include <agentbus/error.hpp>

#include <algorithm>
#include <string>

namespace agentbus {

bool ConsumerGroup::Impl::orphaned(std::uint32_t m, std::uint32_t epoch) const {
  if (m >= max_members) return true;
  const coord::Member& e = members[m];
  const std::uint64_t owner = e.owner.load(std::memory_order_acquire);
  if (owner == 0 || (e.owner_epoch.load(std::memory_order_acquire) & 0xf) != epoch) return true;
  return owner != my_owner && !shm::owner_alive_cached(owner);
}

bool ConsumerGroup::Impl::adoptable(std::uint32_t m, std::uint32_t epoch) const {
  if (m == me || m >= max_members) return true;
  const coord::Member& e = members[m];
  if ((e.incarnation.load(std::memory_order_acquire) & 0xf) != epoch) return true;
  const std::uint64_t actor = e.actor.load(std::memory_order_acquire);
  return actor == 0 || !shm::owner_alive_cached(actor);
}

std::uint32_t ConsumerGroup::Impl::join(std::string_view name) {
  shm::ClaimTable<coord::Member> table({members, max_members}, {.settle_wait = kSettleWait});
  using Outcome = shm::ClaimLookup::Outcome;
  for (;;) {
    const shm::ClaimLookup found = table.find_or_claim(
        shm::fnv1a(name), true, [&](const coord::Member& e) { return member_name_of(static_cast<std::uint32_t>(&e - members)) == name; },
        [&](coord::Member& e) {
          std::copy_n(name.data(), name.size(), e.name);
          e.name_len = static_cast<std::uint32_t>(name.size());
          e.owner_epoch.store(0, std::memory_order_relaxed);
          e.incarnation.store(0, std::memory_order_relaxed);
          e.owner.store(0, std::memory_order_relaxed);
          e.actor.store(0, std::memory_order_relaxed);
        });
    switch (found.outcome) {
      case Outcome::found:
      case Outcome::created: break;
      case Outcome::stuck:
        throw Error(Errc::timeout, "a member entry of group '" + group + "' stayed mid-write for over a second");
      case Outcome::foreign: corrupt("member entry " + std::to_string(found.index) + " has a bad state");
      case Outcome::absent:
      case Outcome::full:
        throw Error(Errc::no_space, "group '" + group + "' has " + std::to_string(max_members) +
                                        " members, its limit; members that left keep their names");
    }
    const std::uint32_t i = found.index;
    coord::Member& e = members[i];
    std::uint64_t actor = e.actor.load(std::memory_order_acquire);
    if (actor != 0 && shm::owner_alive(actor))
      throw Error(Errc::conflict, "member '" + std::string(name) + "' of group '" + group + "' is open in pid " +
                                      std::to_string(actor >> 32));
    if (!e.actor.compare_exchange_strong(actor, my_actor, std::memory_order_acq_rel)) continue;
    std::uint64_t owner = e.owner.load(std::memory_order_acquire);
    if (owner != my_owner) {
      if (owner != 0 && shm::owner_alive(owner)) {
        e.actor.store(0, std::memory_order_release);
        throw Error(Errc::conflict, "member '" + std::string(name) + "' of group '" + group +
                                        "' belongs to the session of pid " + std::to_string(owner >> 32));
      }
      e.owner_epoch.fetch_add(1, std::memory_order_acq_rel);  // its pending events are orphans now
      e.owner.store(my_owner, std::memory_order_release);
    }
    my_incarnation = (e.incarnation.fetch_add(1, std::memory_order_acq_rel) + 1) & 0xf;
    my_owner_epoch = e.owner_epoch.load(std::memory_order_acquire) & 0xf;
    return i;
  }
}

void ConsumerGroup::Impl::release() noexcept {
  if (me >= max_members) return;
  std::uint64_t mine = my_actor;
  members[me].actor.compare_exchange_strong(mine, 0, std::memory_order_acq_rel);
}

}  // namespace agentbus
