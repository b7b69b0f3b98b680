//! Wire messages for the request-response protocol `/powchain/sync/1`.
//!
//! Frame: a u32 big-endian length, then a bincode 2 (standard config,
//! serde) payload. Every frame is size-checked before it is read:
//! requests at most [`MAX_REQUEST_BYTES`], responses at most
//! [`MAX_RESPONSE_BYTES`]. Every collection inside is bounded by its wire
//! size (fixed-size hashes, one byte string for a batch of blocks), so a
//! frame never decodes to more memory than a small multiple of its bytes.
//! bincode lives in this module only.

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use serde::{de::DeserializeOwned, Serialize};
use std::io;

/// The protocol name.
pub const SYNC_PROTOCOL: StreamProtocol = StreamProtocol::new("/powchain/sync/1");

pub use crate::protocol::messages::{
    Handshake, SyncRequest, SyncResponse, MAX_BLOCKS_PER_RESPONSE, MAX_LOCATOR, MAX_REQUEST_BYTES,
    MAX_RESPONSE_BYTES, PROTOCOL_VERSION,
};

/// The codec: length-prefixed, size-limited bincode frames.
#[derive(Clone, Copy, Debug, Default)]
pub struct SyncCodec;

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// Encodes a message body with bincode.
///
/// # Errors
/// An `io::Error` if encoding fails (never for these types).
pub fn encode<T: Serialize>(v: &T) -> io::Result<Vec<u8>> {
    bincode::serde::encode_to_vec(v, config())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Decodes a message body, refusing trailing bytes.
///
/// # Errors
/// `InvalidData` for malformed input.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> io::Result<T> {
    let (v, used) = bincode::serde::decode_from_slice::<T, _>(
        bytes,
        config().with_limit::<MAX_RESPONSE_BYTES>(),
    )
    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    if used != bytes.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "trailing bytes after message",
        ));
    }
    Ok(v)
}

async fn read_frame<T: AsyncRead + Unpin + Send>(io: &mut T, limit: usize) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes exceeds the limit of {limit}"),
        ));
    }
    let mut buf = vec![0u8; len];
    io.read_exact(&mut buf).await?;
    Ok(buf)
}

async fn write_frame<T: AsyncWrite + Unpin + Send>(
    io: &mut T,
    body: &[u8],
    limit: usize,
) -> io::Result<()> {
    if body.len() > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "frame too large",
        ));
    }
    io.write_all(&(body.len() as u32).to_be_bytes()).await?;
    io.write_all(body).await?;
    io.close().await
}

impl libp2p::request_response::Codec for SyncCodec {
    type Protocol = StreamProtocol;
    type Request = SyncRequest;
    type Response = SyncResponse;

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<SyncRequest> {
        decode(&read_frame(io, MAX_REQUEST_BYTES).await?)
    }
    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<SyncResponse> {
        decode(&read_frame(io, MAX_RESPONSE_BYTES).await?)
    }
    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: SyncRequest,
    ) -> io::Result<()> {
        write_frame(io, &encode(&req)?, MAX_REQUEST_BYTES).await
    }
    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: SyncResponse,
    ) -> io::Result<()> {
        write_frame(io, &encode(&res)?, MAX_RESPONSE_BYTES).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::BlockHash;

    #[test]
    fn messages_round_trip_and_garbage_is_an_error() {
        let req = SyncRequest::GetBlocks {
            locator: vec![BlockHash([7u8; 32])],
            max_blocks: 10,
        };
        let bytes = encode(&req).unwrap();
        assert_eq!(decode::<SyncRequest>(&bytes).unwrap(), req);
        let res = SyncResponse::Blocks(crate::protocol::messages::BlockBatch(vec![1, 2, 3]));
        assert_eq!(decode::<SyncResponse>(&encode(&res).unwrap()).unwrap(), res);
        assert!(decode::<SyncRequest>(&[0xff, 0xff, 0xff]).is_err());
        let mut long = bytes.clone();
        long.push(0);
        assert!(decode::<SyncRequest>(&long).is_err());
    }
}
