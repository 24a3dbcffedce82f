//! Length-prefixed frames over any byte stream: a 4-byte big-endian length, then that many
//! bytes. Used by the control socket and the sync streams. Every read is bounded in size (a
//! frame longer than the limit is refused before any of it is read into memory) and in time.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// A frame that could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The peer announced a frame larger than the limit.
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// Announced length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// No complete frame arrived in time.
    #[error("no complete frame within {0:?}")]
    Timeout(Duration),
    /// The stream ended inside a frame.
    #[error("the stream ended in the middle of a frame")]
    Truncated,
    /// Any other I/O failure.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads one frame. `Ok(None)` means the stream ended cleanly between frames. `idle` bounds
/// the wait for a frame to start, `body` the time to read it once it has started.
pub async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
    idle: Duration,
    body: Duration,
) -> Result<Option<Vec<u8>>, FrameError> {
    let mut len = [0u8; 4];
    let first = tokio::time::timeout(idle, r.read(&mut len))
        .await
        .map_err(|_| FrameError::Timeout(idle))??;
    if first == 0 {
        return Ok(None);
    }
    let rest = async {
        r.read_exact(&mut len[first..]).await?;
        let n = u32::from_be_bytes(len) as usize;
        if n > max {
            return Err(FrameError::TooLarge { len: n, max });
        }
        // Grow with what arrives rather than trusting the announced length: many streams may
        // each announce a large frame, but only the flow-control window's worth can be here.
        let mut buf = Vec::with_capacity(n.min(64 * 1024));
        (&mut *r).take(n as u64).read_to_end(&mut buf).await?;
        if buf.len() < n {
            return Err(FrameError::Truncated);
        }
        Ok(buf)
    };
    match tokio::time::timeout(body, rest).await {
        Err(_) => Err(FrameError::Timeout(body)),
        Ok(Err(FrameError::Io(e))) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            Err(FrameError::Truncated)
        }
        Ok(r) => r.map(Some),
    }
}

/// Writes one frame (length prefix and body) and flushes.
pub async fn write_frame<W: AsyncWrite + Unpin>(
    w: &mut W,
    payload: &[u8],
    max: usize,
) -> Result<(), FrameError> {
    if payload.len() > max {
        return Err(FrameError::TooLarge {
            len: payload.len(),
            max,
        });
    }
    let len = (payload.len() as u32).to_be_bytes();
    w.write_all(&len).await?;
    w.write_all(payload).await?;
    w.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn frames_round_trip_and_limits_hold() {
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        write_frame(&mut a, b"hello", 100).await.unwrap();
        write_frame(&mut a, b"", 100).await.unwrap();
        assert_eq!(
            read_frame(&mut b, 100, T, T).await.unwrap().unwrap(),
            b"hello"
        );
        assert_eq!(read_frame(&mut b, 100, T, T).await.unwrap().unwrap(), b"");
        assert!(matches!(
            write_frame(&mut a, &[0; 101], 100).await,
            Err(FrameError::TooLarge { len: 101, .. })
        ));
        a.write_all(&1000u32.to_be_bytes()).await.unwrap();
        assert!(matches!(
            read_frame(&mut b, 100, T, T).await,
            Err(FrameError::TooLarge {
                len: 1000,
                max: 100
            })
        ));
    }

    #[tokio::test]
    async fn truncated_and_clean_ends_differ() {
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&10u32.to_be_bytes()).await.unwrap();
        a.write_all(b"abc").await.unwrap();
        drop(a);
        assert!(matches!(
            read_frame(&mut b, 100, T, T).await,
            Err(FrameError::Truncated)
        ));
        let (a, mut b) = tokio::io::duplex(64);
        drop(a);
        assert!(read_frame(&mut b, 100, T, T).await.unwrap().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_frame_times_out() {
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&10u32.to_be_bytes()).await.unwrap();
        let err = read_frame(&mut b, 100, T, Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(matches!(err, FrameError::Timeout(_)), "{err}");
        drop(a);
    }
}
