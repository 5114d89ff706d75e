// The task board's catalog of task types (TaskBoard::register_task, catalog, find_type). Each
// type is a claim-table entry (coord/task_board_layout.hpp, CatalogEntry) that is written
// under a claim and read seqlock style; a newer version of a type retires the older ones.
#include "coord/task_table.hpp"

#include "shm/claim_table.hpp"
#include "shm/fences.hpp"
#include "shm/ring_copy.hpp"

#include <agentbus/error.hpp>

#include <algorithm>
#include <thread>
#include <utility>
#include <vector>

namespace agentbus {

using namespace coord::tasks;

namespace {

using CatalogClaims = shm::ClaimTable<coord::CatalogEntry>;

TaskType to_type(const coord::CatalogFields& f) {
  return {get(f.type, f.type_len), get(f.description, f.description_len), get(f.produces, f.produces_len),
          get(f.requires_, f.requires_len)};
}

bool same(const TaskType& a, const TaskType& b) {
  return a.type == b.type && a.description == b.description && a.produces == b.produces &&
         a.requires_ == b.requires_;
}

// Every ready entry (only those of type `only`, when given), read consistently, with its
// generation. Filtering compares the type before copying the rest of an entry (~1 KiB).
std::vector<std::pair<std::uint64_t, TaskType>> read_catalog(const TaskBoard::Impl& m,
                                                             std::string_view only = {}) {
  std::vector<std::pair<std::uint64_t, TaskType>> out;
  for (std::uint32_t i = 0; i < m.catalog_capacity; ++i) {
    coord::CatalogEntry& e = m.catalog[i];
    for (int attempt = 0; attempt < 1000; ++attempt) {
      const std::uint64_t s1 = e.state.load(std::memory_order_acquire);
      if (CatalogClaims::being_written(s1)) {
        std::this_thread::yield();  // being written (perhaps a type being updated in place)
        continue;
      }
      if (shm::ClaimWord::phase(s1) != shm::ClaimPhase::ready) break;
      if (!only.empty()) {
        const std::uint32_t len = load_fields(e.fields.type_len);
        char type[sizeof e.fields.type];
        shm::copy_from_ring(type, reinterpret_cast<const std::byte*>(e.fields.type), sizeof type);
        const bool match = len == only.size() && std::string_view(type, len) == only;
        if (shm::load_after_reads(e.state) != s1) continue;
        if (!match) break;
      }
      const std::uint64_t generation = e.generation.load(std::memory_order_relaxed);
      const coord::CatalogFields f = load_fields(e.fields);
      if (shm::load_after_reads(e.state) != s1) continue;
      if (f.type_len == 0 || f.type_len > sizeof f.type || f.description_len > sizeof f.description ||
          f.produces_len > sizeof f.produces || f.requires_len > sizeof f.requires_)
        throw Error(Errc::corrupt, "task catalog entry " + std::to_string(i) + " has bad lengths");
      out.emplace_back(generation, to_type(f));
      break;
    }
  }
  return out;
}

}  // namespace

void TaskBoard::register_task(const TaskType& t) {
  coord::CatalogFields f{};
  check_len("task type", t.type, sizeof f.type, false);
  check_len("task description", t.description, sizeof f.description);
  check_len("task 'produces'", t.produces, sizeof f.produces);
  check_len("task 'requires'", t.requires_, sizeof f.requires_);
  if (const auto existing = find_type(t.type); existing && same(*existing, t)) return;
  f.type_len = put(f.type, t.type);
  f.description_len = put(f.description, t.description);
  f.produces_len = put(f.produces, t.produces);
  f.requires_len = put(f.requires_, t.requires_);

  Impl& m = *impl_;
  // A free entry (or one a dead writer left); failing that, this type's current entry,
  // rewritten in place (readers wait out the write instead of missing the type).
  auto usable = [&](std::uint64_t s, const coord::CatalogEntry& e, bool in_place) {
    if (!in_place) return s == 0 || CatalogClaims::abandoned(s);
    if (shm::ClaimWord::phase(s) != shm::ClaimPhase::ready) return false;
    const coord::CatalogFields of = load_fields(e.fields);
    return get(of.type, of.type_len) == t.type;
  };
  for (std::uint32_t n = 0; n < 2 * m.catalog_capacity; ++n) {
    const std::uint32_t i = n % m.catalog_capacity;
    coord::CatalogEntry& e = m.catalog[i];
    const std::uint64_t s = e.state.load(std::memory_order_acquire);
    if (!usable(s, e, n >= m.catalog_capacity)) continue;
    if (!CatalogClaims::claim(e, s)) continue;
    store_fields(e.fields, f);
    const std::uint64_t gen = m.header->catalog_generation.fetch_add(1, std::memory_order_acq_rel) + 1;
    e.generation.store(gen, std::memory_order_relaxed);
    CatalogClaims::publish(e, shm::ClaimWord::make(shm::ClaimPhase::ready, gen));
    // Retire older versions of this type, so lookups find one and their space is reused.
    for (std::uint32_t j = 0; j < m.catalog_capacity; ++j) {
      if (j == i) continue;
      coord::CatalogEntry& old = m.catalog[j];
      std::uint64_t os = old.state.load(std::memory_order_acquire);
      if (shm::ClaimWord::phase(os) != shm::ClaimPhase::ready || old.generation.load(std::memory_order_relaxed) >= gen)
        continue;
      const coord::CatalogFields of = load_fields(old.fields);
      if (get(of.type, of.type_len) == t.type) old.state.compare_exchange_strong(os, 0, std::memory_order_acq_rel);
    }
    return;
  }
  throw Error(Errc::no_space, "task catalog of room '" + m.room.name() + "' is full (" +
                                  std::to_string(m.catalog_capacity) + " types)");
}

std::vector<TaskType> TaskBoard::catalog() const {
  auto all = read_catalog(*impl_);
  // Newest version of each type; a retirement may race with this read.
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) {
    return a.second.type != b.second.type ? a.second.type < b.second.type : a.first > b.first;
  });
  std::vector<TaskType> out;
  for (auto& [gen, t] : all)
    if (out.empty() || out.back().type != t.type) out.push_back(std::move(t));
  return out;
}

std::optional<TaskType> TaskBoard::find_type(std::string_view type) const {
  std::optional<std::pair<std::uint64_t, TaskType>> best;
  if (type.empty()) return std::nullopt;
  for (auto& entry : read_catalog(*impl_, type))
    if (!best || entry.first > best->first) best = std::move(entry);
  if (!best) return std::nullopt;
  return std::move(best->second);
}

}  // namespace agentbus
