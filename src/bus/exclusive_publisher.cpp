#include "bus/room_impl.hpp"
#include "shm/exclusive_writer.hpp"

#include <agentbus/error.hpp>
#include <agentbus/exclusive_publisher.hpp>

namespace agentbus {

struct ExclusivePublisher::Impl {
  std::shared_ptr<Room::Impl> room;  // keeps the mapping alive
  shm::ExclusiveWriter writer;
  bool closed = false;
};

ExclusivePublisher::ExclusivePublisher(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ExclusivePublisher::ExclusivePublisher(ExclusivePublisher&&) noexcept = default;
ExclusivePublisher& ExclusivePublisher::operator=(ExclusivePublisher&& other) noexcept {
  if (this != &other) {
    close();
    impl_ = std::move(other.impl_);
  }
  return *this;
}
ExclusivePublisher::~ExclusivePublisher() { close(); }

PublishResult ExclusivePublisher::publish(std::string_view type, std::string_view agent, std::string_view payload,
                                          const PublishOptions& o) {
  if (!impl_ || impl_->closed) throw Error(Errc::invalid_argument, "exclusive publisher is closed");
  return impl_->writer.publish({type, agent, o.to, o.reply_to, payload, o.origin, o.reply_to_origin});
}

bool ExclusivePublisher::armed() const noexcept { return impl_ && !impl_->closed && impl_->writer.armed(); }

void ExclusivePublisher::close() noexcept {
  if (!impl_ || impl_->closed) return;
  impl_->closed = true;
  impl_->writer.release();
}

ExclusivePublisher Room::exclusive_publisher() {
  return ExclusivePublisher(std::unique_ptr<ExclusivePublisher::Impl>(
      new ExclusivePublisher::Impl{impl_, shm::ExclusiveWriter(impl_->ring), false}));
}

}  // namespace agentbus
