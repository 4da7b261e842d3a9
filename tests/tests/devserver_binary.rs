//! `devhive-realtime dev` as a process: it prints where it listens, serves real clients, and on
//! SIGTERM closes every socket with 1001 before exiting cleanly.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use futures::StreamExt;
use tokio_tungstenite::tungstenite::Message;

/// Kills the server if the test fails before it exits.
struct Reap(Option<std::process::Child>);

impl Drop for Reap {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[tokio::test]
async fn sigterm_closes_sockets_with_1001_and_exits_cleanly() {
    let child = Command::new(e2e::workspace_binary("devhive-realtime"))
        .args(["dev", "--addr", "127.0.0.1:0", "--store", "memory"])
        .env_remove("DATABASE_URL")
        .env_remove("JWT_SECRET")
        .env_remove("MEMBERSHIP")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reap = Reap(Some(child));
    let child = reap.0.as_mut().unwrap();
    // The banner ends with the token hint; its WebSocket line carries the address.
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut banner = Vec::new();
        let mut url = None;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if url.is_none() {
                url = line
                    .split_whitespace()
                    .find(|w| w.starts_with("ws://"))
                    .map(|u| u.split('?').next().unwrap().to_owned());
            }
            banner.push(line.clone());
            if line.contains("Get a token") {
                let _ = tx.send((url.clone().unwrap_or_default(), banner.clone()));
            }
        }
    });
    let (url, banner) = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("banner with the WebSocket URL");
    let banner = banner.join("\n");
    assert!(
        banner.contains("memory")
            && banner.contains("none")
            && banner.contains("DEVELOPMENT secret"),
        "{banner}"
    );

    let token = {
        let out = Command::new(e2e::workspace_binary("devhive-realtime"))
            .args(["token", "--user", "11111111-1111-4111-8111-111111111111"])
            .env_remove("JWT_SECRET")
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("{url}?token={token}"))
        .await
        .expect("connect");

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let code = loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("close in time")
        {
            Some(Ok(Message::Close(frame))) => break frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(code, Some(1001));
    let mut child = reap.0.take().unwrap();
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(
        exit.success(),
        "exits 0 after a graceful shutdown: {exit:?}"
    );
}
