//! Slow clients: a body that does not arrive within `HTTP_BODY_TIMEOUT` is cut with 408 and its
//! connection closed, a head that does not arrive within `HTTP_HEAD_TIMEOUT` too, and while a
//! thousand such connections are open the service keeps answering `/health` and refresh.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::helpers::{email, tenant_host, Backend, TestApp};
use crate::on_both_backends;

on_both_backends!(
    a_slow_body_is_cut_with_408_and_the_connection_closed,
    the_service_answers_under_a_thousand_slow_bodies
);

fn port(app: &TestApp) -> u16 {
    app.base.rsplit(':').next().unwrap().parse().unwrap()
}

/// The head of a login whose body is announced as 64 bytes.
fn head() -> String {
    let host = tenant_host().unwrap_or_else(|| "127.0.0.1".into());
    format!(
        "POST /auth/customer/emailpass HTTP/1.1\r\nHost: {host}\r\ncontent-type: application/json\r\n\
         accept: application/json\r\ncontent-length: 64\r\n\r\n"
    )
}

/// Reads until the server closes the connection (or `timeout`): what it sent, and whether it
/// closed.
fn read_to_close(stream: &mut TcpStream, timeout: Duration) -> (String, bool) {
    stream.set_read_timeout(Some(timeout)).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let closed = loop {
        match stream.read(&mut chunk) {
            Ok(0) => break true,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
            Err(_) => break false,
        }
    };
    (String::from_utf8_lossy(&buf).into_owned(), closed)
}

fn a_slow_body_is_cut_with_408_and_the_connection_closed(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, &[("HTTP_BODY_TIMEOUT", "1500ms"), ("HTTP_HEAD_TIMEOUT", "1s")])
    else {
        return;
    };
    let port = port(&app);
    let before = app.db().fingerprint();

    // A body that trickles in, one byte every 200 ms: the deadline is for the whole body, so
    // bytes arriving do not extend it.
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let started = Instant::now();
    stream.write_all(head().as_bytes()).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let trickle = std::thread::spawn(move || {
        for byte in br#"{"email":"ann@example.com","password":"a password that trick"#.iter().take(40) {
            if writer.write_all(&[*byte]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    let (response, closed) = read_to_close(&mut stream, Duration::from_secs(10));
    let elapsed = started.elapsed();
    trickle.join().unwrap();
    assert!(response.starts_with("HTTP/1.1 408 "), "{response}");
    assert!(response.contains("content-type: application/json"), "{response}");
    assert!(response.contains("connection: close"), "the 408 says it closes: {response}");
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(body).unwrap(),
        serde_json::json!({"type": "request_timeout", "message": "The request body did not arrive within 1500 ms"})
    );
    assert!(closed, "the connection is closed after the 408");
    assert!(elapsed >= Duration::from_millis(1400) && elapsed < Duration::from_secs(5), "{elapsed:?}");

    // A body that never comes, on reset-password: the same, and nothing is recorded.
    let host = tenant_host().unwrap_or_else(|| "127.0.0.1".into());
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .write_all(
            format!(
                "POST /auth/customer/emailpass/reset-password HTTP/1.1\r\nHost: {host}\r\n\
                 content-type: application/json\r\ncontent-length: 40\r\n\r\n{{\"identifier\":"
            )
            .as_bytes(),
        )
        .unwrap();
    let (response, closed) = read_to_close(&mut stream, Duration::from_secs(10));
    assert!(response.starts_with("HTTP/1.1 408 "), "{response}");
    assert!(closed);

    // A head that never ends: actix's own 408 after HTTP_HEAD_TIMEOUT, and the connection closed.
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let started = Instant::now();
    stream.write_all(format!("GET /health HTTP/1.1\r\nHost: {host}\r\nx-slow: ").as_bytes()).unwrap();
    let (response, closed) = read_to_close(&mut stream, Duration::from_secs(10));
    assert!(response.starts_with("HTTP/1.1 408 "), "{response}");
    assert!(closed);
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());

    // The slow requests changed nothing, and a body that arrives in time is served.
    assert_eq!(app.db().fingerprint(), before);
    assert_eq!(app.register(&email("slow"), crate::helpers::PASSWORD).status, 200);
}

fn the_service_answers_under_a_thousand_slow_bodies(backend: Backend) {
    const SLOW: usize = 1000;
    // Bounds are generous: CI runs the whole suite at once on two cores.
    let Some(app) = TestApp::spawn_with(backend, &[("HTTP_BODY_TIMEOUT", "15s")]) else { return };
    let port = port(&app);
    let token = app.registered(&email("busy"));
    let partial = format!("{}{{\"email\":\"someone@example.com\",", head());
    let opened = Instant::now();
    let mut slow: Vec<TcpStream> = (0..SLOW)
        .map(|i| {
            let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap_or_else(|e| panic!("connection {i}: {e}"));
            stream.write_all(partial.as_bytes()).unwrap();
            stream
        })
        .collect();
    let all_open = opened.elapsed();
    assert!(all_open < Duration::from_secs(8), "opening the slow connections took {all_open:?}");

    // While they are all open and waiting: the probe and refresh answer, quickly.
    let mut checks = 0;
    while opened.elapsed() < all_open + Duration::from_secs(3) {
        let started = Instant::now();
        let health = app.request("GET", "/health", None, &[]);
        assert_eq!((health.status, health.text.as_str()), (200, "OK"));
        let refresh = app.refresh(&token);
        assert_eq!(refresh.status, 200, "{}", refresh.text);
        assert!(started.elapsed() < Duration::from_secs(5), "answered in {:?}", started.elapsed());
        checks += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(checks >= 3, "{checks} checks while the slow connections were open");

    // None of the slow connections was answered yet: each gets its 408 at the deadline, and is
    // closed.
    for (i, stream) in slow.iter_mut().enumerate() {
        let (response, closed) = read_to_close(stream, Duration::from_secs(30));
        assert!(response.starts_with("HTTP/1.1 408 "), "connection {i}: {response:?}");
        assert!(closed, "connection {i} is closed");
    }
    assert!(opened.elapsed() >= Duration::from_secs(15));
    assert_eq!(app.refresh(&token).status, 200);
}
