//! The api role's health endpoints, until the REST API lands: `/healthz`
//! (the process is up) and `/readyz` (the store answers).

use anyhow::Result;
use sluice_store::Store;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

pub async fn serve(
    listener: tokio::net::TcpListener,
    store: Store,
    mut shutdown: watch::Receiver<bool>,
) -> Result<()> {
    loop {
        let (mut socket, _) = tokio::select! {
            accepted = listener.accept() => accepted?,
            _ = shutdown.changed() => return Ok(()),
        };
        let store = store.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            let n = socket.read(&mut buf).await.unwrap_or(0);
            let request = String::from_utf8_lossy(&buf[..n]);
            let path = request.split_whitespace().nth(1).unwrap_or("/");
            let (status, body) = match path {
                "/healthz" => ("200 OK", "ok".to_string()),
                "/readyz" => match store.ping().await {
                    Ok(()) => ("200 OK", "ready".to_string()),
                    Err(e) => ("503 Service Unavailable", e.to_string()),
                },
                _ => ("404 Not Found", "not found".to_string()),
            };
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
        });
    }
}
