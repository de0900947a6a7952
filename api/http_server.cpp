// The only translation unit that includes Beast: it is the slow one to compile.
#include "api/http_server.h"

// clang-format off
#include <utility>  // first: Boost 1.74's Asio uses std::exchange without including it
// clang-format on
#include <boost/asio.hpp>
#include <boost/beast.hpp>
#include <limits>
#include <thread>
#include <vector>

#include "api/http.h"
#include "api/metrics.h"
#include "api/router.h"

namespace chorus::api {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

Request to_request(const http::request<http::string_body>& in) {
  Request r;
  r.method = std::string(in.method_string());
  std::string_view target(in.target().data(), in.target().size());
  const auto q = target.find('?');
  r.raw_path = std::string(target.substr(0, q));
  r.path = percent_decode(r.raw_path, false);
  if (q != std::string_view::npos) {
    std::string_view query = target.substr(q + 1);
    while (!query.empty()) {
      auto amp = query.find('&');
      std::string_view pair = query.substr(0, amp);
      auto eq = pair.find('=');
      if (!pair.empty()) {
        r.query.emplace_back(
            percent_decode(pair.substr(0, eq), true),
            eq == std::string_view::npos ? "" : percent_decode(pair.substr(eq + 1), true));
      }
      if (amp == std::string_view::npos) break;
      query.remove_prefix(amp + 1);
    }
  }
  auto header = [&](std::string_view name) {
    const beast::string_view key(name.data(), name.size());
    if (in.count(key) > 1) r.repeated_headers.emplace_back(name);
    auto it = in.find(key);
    return it == in.end() ? std::string() : std::string(it->value());
  };
  r.authorization = header("Authorization");
  r.idempotency_key = header("Idempotency-Key");
  r.consistency_token = header("X-Consistency-Token");
  r.content_type = header("Content-Type");
  r.body = in.body();
  return r;
}

// Where requests that may wait on the log are answered: commands (anything but GET and HEAD)
// wait for their append, up to twice the log's append timeout when the brokers do not answer,
// and a read with a consistency token waits for the views (and on Kafka may ask the brokers'
// watermarks). On the I/O threads they would hold every one of them through a broker outage,
// and health checks and plain reads, which need no broker, would wait behind them (a liveness
// probe would then kill a server that only waits). What waits is bounded in count and in body
// bytes (an attachment is up to 10 MiB): beyond, 503 at once.
struct Writers {
  asio::thread_pool pool;
  std::atomic<std::size_t> pending{0};        // requests queued or running
  std::atomic<std::size_t> pending_bytes{0};  // their bodies
  std::size_t max_pending;
  static constexpr std::size_t kMaxPendingBytes = std::size_t{256} << 20;
  explicit Writers(int threads)
      : pool(static_cast<std::size_t>(threads)),
        max_pending(static_cast<std::size_t>(threads) * 256) {}
  // Counts a request in; false (nothing counted) when it would go beyond either bound (one
  // body alone may: the largest attachment is a setting).
  bool admit(std::size_t bytes) {
    const std::size_t before = pending_bytes.fetch_add(bytes);
    if (++pending > max_pending || (before > 0 && before + bytes > kMaxPendingBytes)) {
      release(bytes);
      return false;
    }
    return true;
  }
  void release(std::size_t bytes) {
    --pending;
    pending_bytes -= bytes;
  }
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const ServerOptions& options, Router& router, Metrics& metrics,
          std::atomic<int>& open, Writers& writers)
      : stream_(std::move(socket)),
        timer_(stream_.get_executor()),
        options_(options),
        router_(router),
        metrics_(metrics),
        open_(open),
        writers_(writers) {
    metrics_.set_open_connections(++open_);
  }
  ~Session() { metrics_.set_open_connections(--open_); }

  void start() { wait_for_request(); }

 private:
  // Idle between requests: wait for the first byte without a 408 (a silent close is right).
  void wait_for_request() {
    if (buffer_.size() > 0) return read_request();
    arm(options_.idle_timeout, /*answer_408=*/false);
    stream_.async_read_some(buffer_.prepare(4096),
                            [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                              self->timer_.cancel();
                              if (ec) return self->close();
                              self->buffer_.commit(n);
                              self->read_request();
                            });
  }

  // The head first, then the body under the limit of its route (attachment uploads have their
  // own, Router::body_limit): Beast checks Content-Length against the limit while parsing the
  // head, so the head is read without one and the length checked here.
  void read_request() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(options_.max_header_bytes));
    // Not boost::none: Beast 1.74 compares the length with the optional, and none is below any.
    parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    limit_ = BodyLimit{options_.max_body_bytes, "request.body_too_large",
                       "Corps de requête trop volumineux"};
    arm(options_.request_timeout, /*answer_408=*/true);
    http::async_read_header(
        stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
          if (ec) {
            self->timer_.cancel();
            return self->on_read(ec);
          }
          const auto& head = self->parser_->get();
          std::string_view target(head.target().data(), head.target().size());
          target = target.substr(0, target.find('?'));
          const std::string_view method(head.method_string().data(), head.method_string().size());
          if (auto limit = self->router_.body_limit(method, target)) self->limit_ = *limit;
          const auto length = self->parser_->content_length();
          if (length && *length > self->limit_.bytes) {
            self->timer_.cancel();
            return self->on_read(http::error::body_limit);
          }
          self->parser_->body_limit(self->limit_.bytes);  // chunked bodies are counted as read
          http::async_read(self->stream_, self->buffer_, *self->parser_,
                           [self](beast::error_code ec2, std::size_t) {
                             self->timer_.cancel();
                             self->on_read(ec2);
                           });
        });
  }

  void arm(std::chrono::milliseconds timeout, bool answer_408) {
    timed_out_ = false;
    timer_.expires_after(timeout);
    timer_.async_wait([self = shared_from_this(), answer_408](beast::error_code ec) {
      if (ec) return;  // cancelled: the read finished in time
      self->timed_out_ = answer_408;
      beast::error_code ignored;
      self->stream_.socket().cancel(ignored);
      if (!answer_408) self->stream_.socket().close(ignored);
    });
  }

  void on_read(beast::error_code ec) {
    if (timed_out_) {
      return answer_error(Problem{408, "request.timeout", "", "Requête trop lente."});
    }
    if (ec == http::error::end_of_stream || ec == asio::error::operation_aborted) return close();
    if (ec == http::error::body_limit) {
      return answer_error(
          Problem{413, limit_.rule, "",
                  limit_.what + " (maximum " + std::to_string(limit_.bytes) + " octets)."});
    }
    if (ec == http::error::header_limit) {
      return answer_error(
          Problem{431, "request.headers_too_large", "", "En-têtes de requête trop volumineux."});
    }
    if (ec) {
      return answer_error(Problem{400, "request.malformed", "", "Requête HTTP mal formée."});
    }
    auto request = parser_->release();
    Request r = to_request(request);
    r.client_address = client_address(request);
    // A client's own copy ahead of the proxy's would pick its rate-limit bucket.
    if (const std::string& header = options_.client_address_header;
        !header.empty() && request.count(beast::string_view(header.data(), header.size())) > 1) {
      r.repeated_headers.push_back(header);
    }
    const unsigned version = request.version();
    const bool keep_alive = request.keep_alive();
    if (router_.answers_at_once(r)) {
      Response response = router_.handle(r);
      return send(std::move(response), version, keep_alive);
    }
    const std::size_t bytes = r.body.size();
    if (!writers_.admit(bytes)) {
      return send(Problem{503, "server.busy", "",
                          "Trop de requêtes en attente du journal : réessayez plus tard."}
                      .to_response(),
                  version, keep_alive);
    }
    asio::post(writers_.pool,
               [self = shared_from_this(), r = std::move(r), version, keep_alive, bytes]() mutable {
                 Response response = self->router_.handle(r);
                 self->writers_.release(bytes);
                 // Back on the connection's strand, which owns the socket.
                 asio::post(self->stream_.get_executor(),
                            [self, response = std::move(response), version, keep_alive]() mutable {
                              self->send(std::move(response), version, keep_alive);
                            });
               });
  }

  std::string client_address(const http::request<http::string_body>& request) {
    const std::string& header = options_.client_address_header;
    if (!header.empty()) {
      auto it = request.find(beast::string_view(header.data(), header.size()));
      if (it != request.end()) return std::string(it->value());
    }
    beast::error_code ec;
    auto peer = stream_.socket().remote_endpoint(ec);
    return ec ? std::string() : peer.address().to_string();
  }

  // An error found before a complete request was read: answer it and close, since the rest of
  // the byte stream cannot be trusted.
  void answer_error(const Problem& problem) {
    send(problem.to_response(), 11, /*keep_alive=*/false);
  }

  void send(Response response, unsigned version, bool keep_alive) {
    if (response.stream) {
      // HTTP/1.0 has no chunked encoding: such a client gets the whole body at once.
      if (version >= 11) return send_stream(std::move(response), version, keep_alive);
      std::string chunk;
      StreamStep step = StreamStep::more;
      while (step == StreamStep::more) {
        chunk.clear();
        step = response.stream(chunk);
        response.body += chunk;
      }
      if (step == StreamStep::failed) return close();
    }
    auto out = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(response.status), version);
    out->set(http::field::server, "chorus");
    out->set(http::field::content_type, response.content_type);
    out->set(http::field::cache_control, "no-store");  // answers depend on the caller
    for (const auto& [name, value] : response.headers) out->set(name, value);
    out->body() = std::move(response.body);
    out->keep_alive(keep_alive);
    out->prepare_payload();
    arm(options_.request_timeout, /*answer_408=*/false);
    http::async_write(
        stream_, *out,
        [self = shared_from_this(), out, keep_alive](beast::error_code ec, std::size_t) {
          self->timer_.cancel();
          if (ec || !keep_alive) return self->close();
          self->wait_for_request();
        });
  }

  // Head first, then one chunk per call of the stream, each written before the next is made:
  // the answer never holds more than one chunk in memory.
  void send_stream(Response response, unsigned version, bool keep_alive) {
    auto head = std::make_shared<http::response<http::empty_body>>(
        static_cast<http::status>(response.status), version);
    head->set(http::field::server, "chorus");
    head->set(http::field::content_type, response.content_type);
    head->set(http::field::cache_control, "no-store");
    for (const auto& [name, value] : response.headers) head->set(name, value);
    head->keep_alive(keep_alive);
    head->chunked(true);
    auto serializer = std::make_shared<http::response_serializer<http::empty_body>>(*head);
    auto stream = std::make_shared<BodyStream>(std::move(response.stream));
    arm(options_.request_timeout, /*answer_408=*/false);
    http::async_write_header(stream_, *serializer,
                             [self = shared_from_this(), head, serializer, stream, keep_alive](
                                 beast::error_code ec, std::size_t) {
                               self->timer_.cancel();
                               if (ec) return self->close();
                               self->write_chunk(stream, keep_alive);
                             });
  }

  void write_chunk(const std::shared_ptr<BodyStream>& stream, bool keep_alive) {
    auto chunk = std::make_shared<std::string>();
    StreamStep step = StreamStep::more;
    while (step == StreamStep::more && chunk->empty()) step = (*stream)(*chunk);
    if (step == StreamStep::failed) return close();
    if (chunk->empty()) return write_last_chunk(keep_alive);
    arm(options_.request_timeout, /*answer_408=*/false);
    asio::async_write(stream_, http::make_chunk(asio::buffer(*chunk)),
                      [self = shared_from_this(), chunk, stream, step, keep_alive](
                          beast::error_code ec, std::size_t) {
                        self->timer_.cancel();
                        if (ec) return self->close();
                        if (step == StreamStep::more) return self->write_chunk(stream, keep_alive);
                        self->write_last_chunk(keep_alive);
                      });
  }

  void write_last_chunk(bool keep_alive) {
    arm(options_.request_timeout, /*answer_408=*/false);
    asio::async_write(stream_, http::make_chunk_last(),
                      [self = shared_from_this(), keep_alive](beast::error_code ec, std::size_t) {
                        self->timer_.cancel();
                        if (ec || !keep_alive) return self->close();
                        self->wait_for_request();
                      });
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.socket().close(ignored);
  }

  beast::tcp_stream stream_;
  asio::steady_timer timer_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  const ServerOptions& options_;
  Router& router_;
  Metrics& metrics_;
  std::atomic<int>& open_;
  Writers& writers_;
  bool timed_out_ = false;
  BodyLimit limit_;  // of the request being read
};

}  // namespace

struct HttpServer::Impl {
  ServerOptions options;
  Router& router;
  Metrics& metrics;
  asio::io_context io;
  tcp::acceptor acceptor{io};
  std::atomic<int> open{0};
  // After io: destroyed first, it joins its threads while the I/O context they post answers to
  // still exists.
  Writers writers;

  Impl(const ServerOptions& o, Router& r, Metrics& m)
      : options(o), router(r), metrics(m), writers(o.threads) {}

  void accept() {
    acceptor.async_accept(asio::make_strand(io), [this](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted) return;
      if (!ec) {
        socket.set_option(tcp::no_delay(true), ec);
        std::make_shared<Session>(std::move(socket), options, router, metrics, open, writers)
            ->start();
      }
      accept();
    });
  }
};

HttpServer::HttpServer(const ServerOptions& options, Router& router, Metrics& metrics)
    : impl_(std::make_unique<Impl>(options, router, metrics)) {
  tcp::endpoint endpoint(asio::ip::make_address(options.address), options.port);
  impl_->acceptor.open(endpoint.protocol());
  impl_->acceptor.set_option(asio::socket_base::reuse_address(true));
  impl_->acceptor.bind(endpoint);
  impl_->acceptor.listen(asio::socket_base::max_listen_connections);
  impl_->accept();
}

HttpServer::~HttpServer() = default;

std::uint16_t HttpServer::port() const { return impl_->acceptor.local_endpoint().port(); }

void HttpServer::run() {
  std::vector<std::thread> threads;
  for (int i = 1; i < impl_->options.threads; ++i)
    threads.emplace_back([this] { impl_->io.run(); });
  impl_->io.run();
  for (auto& t : threads) t.join();
}

void HttpServer::stop() {
  asio::post(impl_->io, [this] {
    beast::error_code ignored;
    impl_->acceptor.close(ignored);
    impl_->io.stop();
    impl_->writers.pool.stop();  // commands not started are dropped, as the connections are
  });
}

}  // namespace chorus::api
