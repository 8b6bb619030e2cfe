//! Connections held open, trickled, or opened in numbers (issues 20 and
//! 27), against the binary: every socket that sends little or nothing is
//! closed by a timeout or for room, every client that sends a request gets
//! an HTTP answer, and a burst from one address goes through.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::support::*;

/// The binary with `server_keys` added to `[server]`, its descriptors
/// limited to `max_open_files` when given (as `ulimit -n` would).
pub(crate) async fn server_with(
    server_keys: &str,
    max_open_files: Option<u32>,
) -> (ServerProcess, SocketAddr, tempfile::TempDir) {
    binary_with(server_keys, "", max_open_files).await
}

/// The binary with `server_keys` added to `[server]` and the sections of
/// `sections` appended, its descriptors limited to `max_open_files` when
/// given.
async fn binary_with(
    server_keys: &str,
    sections: &str,
    max_open_files: Option<u32>,
) -> (ServerProcess, SocketAddr, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let path = write_config(dir.path(), port);
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("[server]\n", &format!("[server]\n{server_keys}"));
    std::fs::write(&path, format!("{text}{sections}")).unwrap();
    let mut command = match max_open_files {
        Some(limit) => {
            let mut command = Command::new("bash");
            command
                .arg("-c")
                .arg(format!(
                    "ulimit -n {limit} && exec \"$0\" serve --config \"$1\""
                ))
                .arg(binary())
                .arg(&path);
            command
        }
        None => {
            let mut command = Command::new(binary());
            command.args(["serve", "--config"]).arg(&path);
            command
        }
    };
    command.stderr(Stdio::null());
    let server = ServerProcess::start_command(command, port).await;
    (server, SocketAddr::from(([127, 0, 0, 1], port)), dir)
}

/// A connection from `from` that sends `bytes` and then nothing.
async fn stalled(from: Ipv4Addr, server: SocketAddr, bytes: &[u8]) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((from, 0))).unwrap();
    let mut stream = socket.connect(server).await.unwrap();
    // The server may already have closed it (a refused connection).
    let _ = stream.write_all(bytes).await;
    stream
}

const HALF_SENT: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n";

/// Waits up to `limit` for the server to close `stream`; how long it took.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buffer = [0u8; 512];
    tokio::time::timeout(limit, async {
        while matches!(stream.read(&mut buffer).await, Ok(n) if n > 0) {}
    })
    .await
    .ok()
    .map(|()| started.elapsed())
}

/// Waits up to `limit` for the server to close each socket; how long each took.
async fn close_times(sockets: &mut [TcpStream], limit: Duration) -> Vec<Option<Duration>> {
    futures_util::future::join_all(sockets.iter_mut().map(|s| closed_within(s, limit))).await
}

/// `GET /healthz` from a normal client, on another loopback address than
/// the stalled sockets; asserts a 200 and returns how long it took.
async fn normal_client_answered(base: &str) -> Duration {
    let started = Instant::now();
    let response = reqwest::Client::builder()
        .local_address(IpAddr::from([127, 0, 0, 2]))
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("a normal client is answered");
    assert_eq!(response.status(), StatusCode::OK);
    started.elapsed()
}

/// The tester's scene: 300 sockets that send one header line and stop,
/// against a server limited to 256 descriptors. A normal client is still
/// answered within a few seconds, and the server closes every stalled
/// socket once `header_read_timeout` has passed for it.
#[tokio::test]
async fn half_sent_connections_beyond_the_descriptor_limit_are_closed_and_starve_no_one() {
    let (server, addr, _dir) = server_with("header_read_timeout = \"2s\"\n", Some(256)).await;
    let mut sockets = Vec::new();
    for i in 0..300u16 {
        // Ten source addresses, so that the per-address cap (64) is not
        // what saves the server here.
        let from = Ipv4Addr::new(127, 0, 1, 10 + u8::try_from(i % 10).unwrap());
        sockets.push(stalled(from, addr, HALF_SENT).await);
    }
    let answered = normal_client_answered(&server.base).await;
    assert!(
        answered < Duration::from_secs(10),
        "answered after {answered:?}"
    );
    let closed = close_times(&mut sockets, Duration::from_secs(20)).await;
    let open = closed.iter().filter(|c| c.is_none()).count();
    assert_eq!(open, 0, "{open} stalled sockets are still open");
    let last = closed.iter().flatten().max().copied();
    eprintln!(
        "normal client answered after {answered:?}; last stalled socket closed after {last:?}"
    );
}

/// Slowloris, an idle keep-alive socket, an h2c preface and nothing more,
/// an idle HTTP/2 connection: each is closed by its timeout.
#[tokio::test]
async fn slow_idle_and_silent_connections_are_closed_by_their_timeouts() {
    let (_server, addr, _dir) = server_with(
        "header_read_timeout = \"2s\"\nidle_timeout = \"3s\"\nhttp2_keep_alive_interval = \"2s\"\n",
        None,
    )
    .await;
    let limit = Duration::from_secs(10);
    let local = Ipv4Addr::LOCALHOST;
    let slowloris = async {
        let mut stream = stalled(local, addr, b"GET /healthz HTTP/1.1\r\n").await;
        trickled_until_closed(&mut stream, limit).await
    };
    let keep_alive = async {
        let mut stream = answered_once(addr).await;
        closed_within(&mut stream, limit).await
    };
    let h2c_preface = async {
        let mut stream = stalled(local, addr, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await;
        closed_within(&mut stream, limit).await
    };
    let idle_http2 = async {
        let io = hyper_util::rt::TokioIo::new(TcpStream::connect(addr).await.unwrap());
        let (mut sender, connection) = hyper::client::conn::http2::handshake::<_, _, String>(
            hyper_util::rt::TokioExecutor::new(),
            io,
        )
        .await
        .unwrap();
        let connection = tokio::spawn(connection);
        let request = hyper::Request::get(format!("http://{addr}/healthz"))
            .body(String::new())
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let started = Instant::now();
        tokio::time::timeout(limit, connection)
            .await
            .ok()
            .map(|_| started.elapsed())
    };
    let (slowloris, keep_alive, h2c_preface, idle_http2) =
        tokio::join!(slowloris, keep_alive, h2c_preface, idle_http2);
    eprintln!(
        "closed after: slowloris {slowloris:?}, idle keep-alive {keep_alive:?}, \
         h2c preface {h2c_preface:?}, idle HTTP/2 {idle_http2:?}"
    );
    assert!(slowloris.is_some(), "a slowloris socket stayed open");
    assert!(
        keep_alive.is_some(),
        "an idle keep-alive socket stayed open"
    );
    assert!(
        h2c_preface.is_some(),
        "a socket with only the h2c preface stayed open"
    );
    assert!(
        idle_http2.is_some(),
        "an idle HTTP/2 connection stayed open"
    );
}

/// A keep-alive connection from the loopback address that has had one
/// request answered and sends nothing more.
async fn answered_once(server: SocketAddr) -> TcpStream {
    let mut stream = stalled(
        Ipv4Addr::LOCALHOST,
        server,
        b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n",
    )
    .await;
    let mut buffer = [0u8; 512];
    assert!(stream.read(&mut buffer).await.unwrap() > 0, "a response");
    stream
}

/// Sends a header line a byte every 200 ms until the server closes the
/// socket; how long that took, or `None` if it was still open after `limit`.
async fn trickled_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    for byte in b"X-Slow: abcdefghijklmnopqrstuvwxyz".iter().cycle() {
        if stream.write_all(&[*byte]).await.is_err() || started.elapsed() > limit {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    (started.elapsed() < limit).then(|| started.elapsed())
}

/// On HTTP/1.1 each later head is timed too: after one answered request, a
/// connection that then sends nothing, or trickles its next head, is closed
/// by `header_read_timeout`, well before the (long) `idle_timeout`.
#[tokio::test]
async fn later_heads_on_a_keep_alive_connection_are_timed_like_the_first() {
    let (_server, addr, _dir) = server_with(
        "header_read_timeout = \"2s\"\nidle_timeout = \"60s\"\n",
        None,
    )
    .await;
    let limit = Duration::from_secs(10);
    let idle = async {
        let mut stream = answered_once(addr).await;
        closed_within(&mut stream, limit).await
    };
    let slow_second_head = async {
        let mut stream = answered_once(addr).await;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\n")
            .await
            .unwrap();
        trickled_until_closed(&mut stream, limit).await
    };
    let (idle, slow_second_head) = tokio::join!(idle, slow_second_head);
    eprintln!("closed after: idle {idle:?}, slow second head {slow_second_head:?}");
    assert!(idle.is_some(), "an idle keep-alive socket stayed open");
    assert!(
        slow_second_head.is_some(),
        "a socket trickling its second head stayed open"
    );
}

/// An HTTP/1.1 answer read off a raw socket: its status and its head.
struct Answer {
    status: u16,
    head: String,
}

impl Answer {
    /// The value of header `name` (lower case), if sent.
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

/// Reads one answer's head from `stream` within `limit`; `None` when the
/// connection closed first, or nothing came in time.
async fn answer_within<R>(stream: &mut R, limit: Duration) -> Option<Answer>
where
    R: tokio::io::AsyncRead + Unpin,
{
    let mut head = Vec::new();
    let read = tokio::time::timeout(limit, async {
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match stream.read(&mut byte).await {
                Ok(1) => head.push(byte[0]),
                _ => return false,
            }
        }
        true
    })
    .await;
    if read != Ok(true) {
        return None;
    }
    let head = String::from_utf8(head).unwrap();
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some(Answer { status, head })
}

/// A connection from `from` that is open before anything is sent on it.
async fn connected(from: Ipv4Addr, server: SocketAddr) -> TcpStream {
    stalled(from, server, b"").await
}

/// The head of a `method` request to `path` announcing a body of `length`
/// bytes, with `extra` header lines.
fn head_with_body(method: &str, path: &str, length: usize, extra: &str) -> Vec<u8> {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n\
         Content-Length: {length}\r\n{extra}\r\n"
    )
    .into_bytes()
}

/// Sends `bytes` one at a time, `every` apart, until the server closes the
/// socket or they run out.
async fn trickle<W>(stream: &mut W, bytes: &[u8], every: Duration)
where
    W: tokio::io::AsyncWrite + Unpin,
{
    for byte in bytes {
        if stream.write_all(&[*byte]).await.is_err() {
            return;
        }
        tokio::time::sleep(every).await;
    }
}

/// The item of issue 27: 8 addresses each open 64 connections and send a
/// registration whose 100,000-byte body then trickles in (a byte every
/// second) or never comes. Every one is answered 408 with `Connection:
/// close` once `request_body_timeout` has passed (or closed to make room),
/// and a client from a ninth address is answered at once.
#[tokio::test]
async fn bodies_that_never_arrive_are_answered_408_and_starve_no_one() {
    let (server, addr, _dir) = server_with("request_body_timeout = \"3s\"\n", None).await;
    let head = head_with_body("POST", "/register", 100_000, "");
    let mut slow = Vec::new();
    for i in 0..512u16 {
        let from = Ipv4Addr::new(127, 0, 4, 1 + u8::try_from(i / 64).unwrap());
        let mut stream = stalled(from, addr, &head).await;
        let trickles = i % 2 == 0;
        slow.push(tokio::spawn(async move {
            let started = Instant::now();
            let answer = async {
                if trickles {
                    let (mut reader, mut writer) = stream.split();
                    let pending = trickle(&mut writer, &[b' '; 100], Duration::from_secs(1));
                    tokio::select! {
                        answer = answer_within(&mut reader, Duration::from_secs(20)) => answer,
                        () = pending => answer_within(&mut reader, Duration::from_secs(20)).await,
                    }
                } else {
                    answer_within(&mut stream, Duration::from_secs(20)).await
                }
            };
            (answer.await, started.elapsed())
        }));
    }
    let answered = normal_client_answered(&server.base).await;
    let mut timed_out = Vec::new();
    let mut closed_for_room = 0;
    for task in slow {
        match task.await.unwrap() {
            (Some(answer), after) => {
                assert_eq!(answer.status, 408, "{}", answer.head);
                assert_eq!(answer.header("connection"), Some("close"));
                timed_out.push(after);
            }
            (None, _) => closed_for_room += 1,
        }
    }
    let last = timed_out.iter().max().copied().unwrap_or_default();
    eprintln!(
        "ninth address answered after {answered:?}; {} slow bodies answered 408, the last \
         after {last:?}; {closed_for_room} closed to make room",
        timed_out.len()
    );
    assert!(
        answered < Duration::from_secs(2),
        "answered after {answered:?}"
    );
    assert!(closed_for_room <= 2, "{closed_for_room} closed unanswered");
    assert!(
        last < Duration::from_secs(10),
        "the last 408 came after {last:?}"
    );
}

/// The body deadline holds on every route that takes a body, for HTTP/2
/// streams as for HTTP/1.1; and where the route can tell from the head
/// alone that it will refuse (a missing initial access token, a wrong
/// registration access token), it answers before the body comes.
#[tokio::test]
async fn each_route_times_its_body_and_refuses_before_it_where_it_can() {
    let front = "[provider]\nkind = \"hydra\"\nadmin_url = \"http://127.0.0.1:9\"\n\
                 issuer = \"http://127.0.0.1:9\"\nreconcile_interval = \"0s\"\n\
                 [front]\nenabled = true\n";
    let (_server, addr, _dir) = binary_with("request_body_timeout = \"1s\"\n", front, None).await;
    let local = Ipv4Addr::LOCALHOST;
    // The token endpoint's form body never comes.
    let token_head = "POST /token HTTP/1.1\r\nHost: gateway\r\n\
                      Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 500\r\n\r\n";
    let mut stream = stalled(local, addr, token_head.as_bytes()).await;
    let answer = answer_within(&mut stream, Duration::from_secs(5)).await;
    let answer = answer.expect("/token answers a body that never comes");
    assert_eq!(answer.status, 408, "{}", answer.head);
    assert_eq!(answer.header("connection"), Some("close"));
    // A replace with a wrong token is refused before its body comes.
    let started = Instant::now();
    let head = head_with_body(
        "PUT",
        "/register/some-client",
        100_000,
        "Authorization: Bearer not-a-token\r\n",
    );
    let mut stream = stalled(local, addr, &head).await;
    let answer = answer_within(&mut stream, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(answer.status, 401, "{}", answer.head);
    assert_eq!(answer.header("connection"), Some("close"));
    assert!(started.elapsed() < Duration::from_millis(900));
    // HTTP/2 (h2c, prior knowledge): the stream whose body stalls is
    // answered 408.
    let io = hyper_util::rt::TokioIo::new(TcpStream::connect(addr).await.unwrap());
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
            .await
            .unwrap();
    tokio::spawn(connection);
    let first = futures_util::stream::iter([Ok::<_, std::convert::Infallible>(
        hyper::body::Frame::data(bytes::Bytes::from_static(b"{\"redirect_uris\":")),
    )]);
    let body = http_body_util::StreamBody::new(futures_util::StreamExt::chain(
        first,
        futures_util::stream::pending(),
    ));
    let request = hyper::Request::post(format!("http://{addr}/register"))
        .header("content-type", "application/json")
        .body(body)
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(5), sender.send_request(request))
        .await
        .expect("the stream is answered")
        .unwrap();
    assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
}

#[tokio::test]
async fn a_registration_without_its_initial_access_token_is_refused_before_its_body() {
    let (_server, addr, _dir) = binary_with(
        "request_body_timeout = \"30s\"\n",
        "[registration]\nmode = \"initial_access_token\"\n",
        None,
    )
    .await;
    for token in ["", "Authorization: Bearer not-a-token\r\n"] {
        let started = Instant::now();
        let head = head_with_body("POST", "/register", 100_000, token);
        let mut stream = stalled(Ipv4Addr::LOCALHOST, addr, &head).await;
        let answer = answer_within(&mut stream, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(answer.status, 401, "{}", answer.head);
        assert_eq!(answer.header("connection"), Some("close"));
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "answered after {:?}",
            started.elapsed()
        );
    }
}

/// The item of issue 27: 300 registrations from one address, each on a
/// connection opened before any request is sent (a pooled client's burst),
/// with the shipped connection limits. Every one is registered.
#[tokio::test]
async fn a_burst_of_300_registrations_from_one_address_is_answered_in_full() {
    let (_server, addr, _dir) = server_with("", None).await;
    let from = Ipv4Addr::new(127, 0, 5, 1);
    let mut streams = Vec::new();
    for _ in 0..300 {
        streams.push(connected(from, addr).await);
    }
    let body = serde_json::to_vec(&web_client()).unwrap();
    let mut request = head_with_body("POST", "/register", body.len(), "");
    request.extend_from_slice(&body);
    let answers = futures_util::future::join_all(streams.into_iter().map(|mut stream| {
        let request = request.clone();
        async move {
            stream.write_all(&request).await.ok()?;
            answer_within(&mut stream, Duration::from_secs(30)).await
        }
    }))
    .await;
    let mut statuses = std::collections::BTreeMap::new();
    for answer in &answers {
        *statuses
            .entry(answer.as_ref().map(|a| a.status))
            .or_insert(0) += 1;
    }
    eprintln!("burst of 300 from one address: {statuses:?}");
    assert_eq!(statuses.get(&Some(201)), Some(&300), "{statuses:?}");
}

/// An address whose waiting connections are at the cap: a further one
/// waits for a place; one frees up when a waiting connection's request
/// arrives, and if none does in time, the request is answered 503 with
/// `Retry-After`, never reset.
#[tokio::test]
async fn a_connection_over_its_addresss_cap_queues_then_gets_503_not_a_reset() {
    let (_server, addr, _dir) = server_with(
        "header_read_timeout = \"30s\"\nmax_connections_per_ip = 4\n",
        None,
    )
    .await;
    let one = Ipv4Addr::new(127, 0, 2, 1);
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(stalled(one, addr, HALF_SENT).await);
    }
    // Nobody's request arrives: refused after the queue wait.
    let started = Instant::now();
    let mut refused = stalled(one, addr, b"GET /healthz HTTP/1.1\r\nHost: g\r\n\r\n").await;
    let answer = answer_within(&mut refused, Duration::from_secs(5))
        .await
        .expect("an answer, not a reset");
    assert_eq!(answer.status, 503, "{}", answer.head);
    assert_eq!(answer.header("retry-after"), Some("1"));
    assert_eq!(answer.header("connection"), Some("close"));
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(900), "{waited:?}");
    // A held connection's request arrives: the next one takes its place.
    let mut queued = stalled(one, addr, b"GET /healthz HTTP/1.1\r\nHost: g\r\n\r\n").await;
    held[0].write_all(b"\r\n").await.unwrap();
    let first = answer_within(&mut held[0], Duration::from_secs(5)).await;
    assert_eq!(first.unwrap().status, 200);
    let answer = answer_within(&mut queued, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(answer.status, 200, "{}", answer.head);
    // Another address is not held up by this one.
    let other = stalled(
        Ipv4Addr::new(127, 0, 2, 2),
        addr,
        b"GET /healthz HTTP/1.1\r\nHost: g\r\n\r\n",
    );
    let answer = answer_within(&mut other.await, Duration::from_secs(1)).await;
    assert_eq!(answer.unwrap().status, 200);
}

/// At `max_connections`, a new client is answered at once: the connection
/// that has waited longest is closed to make room for it.
#[tokio::test]
async fn at_the_connection_cap_the_longest_waiting_makes_room() {
    let (server, addr, _dir) =
        server_with("header_read_timeout = \"30s\"\nmax_connections = 4\n", None).await;
    let mut sockets = Vec::new();
    for i in 0..4 {
        sockets.push(stalled(Ipv4Addr::new(127, 0, 3, 1 + i), addr, HALF_SENT).await);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let answered = normal_client_answered(&server.base).await;
    assert!(
        answered < Duration::from_secs(1),
        "answered after {answered:?}"
    );
    let closed = close_times(&mut sockets, Duration::from_millis(500)).await;
    assert!(closed[0].is_some(), "the oldest was closed: {closed:?}");
    assert!(closed[1..].iter().all(Option::is_none), "{closed:?}");
}
