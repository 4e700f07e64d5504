//! The PROXY protocol (HAProxy, versions 1 and 2) on the ingest listener, when
//! `server.proxy_protocol` is on (SPEC §15): every connection must open with a header naming
//! the client, read here before hyper sees the stream. A connection without one is closed.
//!
//! The header is read exactly, never a byte past its end (what follows is the client's HTTP),
//! within `server.header_read_timeout` and within the sizes the specification sets: 107 bytes
//! for a v1 line, 16 + the declared length (at most 65,551) for v2. Parsing is by hand: the two
//! address formats are a few lines each, and the `ppp` crate would still leave the framing to
//! us while bringing a second `thiserror` (1.x) and its proc-macro into the build.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

/// The v2 signature, the first 12 bytes of every v2 header.
const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// The longest v1 line, `\r\n` included ("worst case" in the specification).
const V1_MAX: usize = 107;

/// Why a connection was closed before HTTP.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("no PROXY header within the header read timeout")]
    Timeout,
    #[error("connection does not start with a PROXY v1 or v2 header")]
    NotProxy,
    #[error("malformed PROXY header")]
    Malformed,
    #[error("reading the PROXY header: {0}")]
    Io(#[from] io::Error),
}

/// Reads the PROXY header at the start of `stream` and returns the client address it names.
/// `peer` (the proxy itself) is returned for headers that name no client: v2 `LOCAL` (the
/// proxy's own health checks), v1 `UNKNOWN`, and v2 families other than TCP/UDP over IPv4/6.
pub async fn read_header<S: AsyncRead + Unpin>(
    stream: &mut S,
    peer: SocketAddr,
    timeout: Duration,
) -> Result<SocketAddr, ProxyError> {
    match tokio::time::timeout(timeout, read(stream, peer)).await {
        Ok(result) => result,
        Err(_) => Err(ProxyError::Timeout),
    }
}

async fn read<S: AsyncRead + Unpin>(
    stream: &mut S,
    peer: SocketAddr,
) -> Result<SocketAddr, ProxyError> {
    // 12 bytes: the whole v2 signature, and "PROXY " plus the start of a v1 line (the shortest
    // v1 line, "PROXY UNKNOWN\r\n", has 15).
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await?;
    if head == V2_SIGNATURE {
        let mut fixed = [0u8; 4];
        stream.read_exact(&mut fixed).await?;
        let [ver_cmd, family, len_hi, len_lo] = fixed;
        let len = usize::from(u16::from_be_bytes([len_hi, len_lo]));
        // At most 64 KiB, the most a u16 length can declare.
        let mut rest = vec![0u8; len];
        stream.read_exact(&mut rest).await?;
        return parse_v2(ver_cmd, family, &rest, peer);
    }
    if !head.starts_with(b"PROXY ") {
        return Err(ProxyError::NotProxy);
    }
    // Byte by byte up to `\n`: a read past the line would swallow the client's first bytes.
    let mut line = Vec::with_capacity(V1_MAX);
    line.extend_from_slice(&head);
    while !line.ends_with(b"\r\n") {
        if line.len() >= V1_MAX {
            return Err(ProxyError::Malformed);
        }
        line.push(stream.read_u8().await?);
    }
    parse_v1(&line, peer)
}

/// `PROXY TCP4|TCP6 <src> <dst> <sport> <dport>\r\n` or `PROXY UNKNOWN ...\r\n`.
fn parse_v1(line: &[u8], peer: SocketAddr) -> Result<SocketAddr, ProxyError> {
    let line = std::str::from_utf8(line).map_err(|_| ProxyError::Malformed)?;
    let line = line.strip_suffix("\r\n").ok_or(ProxyError::Malformed)?;
    let mut words = line.split(' ');
    let (Some("PROXY"), Some(proto)) = (words.next(), words.next()) else {
        return Err(ProxyError::Malformed);
    };
    if proto == "UNKNOWN" {
        return Ok(peer);
    }
    let (Some(src), Some(_dst), Some(sport), Some(_dport), None) = (
        words.next(),
        words.next(),
        words.next(),
        words.next(),
        words.next(),
    ) else {
        return Err(ProxyError::Malformed);
    };
    let ip: IpAddr = match proto {
        "TCP4" => src.parse::<Ipv4Addr>().map(IpAddr::V4),
        "TCP6" => src.parse::<Ipv6Addr>().map(IpAddr::V6),
        _ => return Err(ProxyError::Malformed),
    }
    .map_err(|_| ProxyError::Malformed)?;
    let port = sport.parse::<u16>().map_err(|_| ProxyError::Malformed)?;
    Ok(SocketAddr::new(ip, port))
}

/// The part after the 16 fixed bytes: addresses (source first), then TLVs that are ignored.
fn parse_v2(
    ver_cmd: u8,
    family: u8,
    rest: &[u8],
    peer: SocketAddr,
) -> Result<SocketAddr, ProxyError> {
    if ver_cmd >> 4 != 2 {
        return Err(ProxyError::Malformed);
    }
    match ver_cmd & 0x0f {
        0 => return Ok(peer), // LOCAL: the proxy's own connection
        1 => {}               // PROXY
        _ => return Err(ProxyError::Malformed),
    }
    match family >> 4 {
        // AF_INET: src(4) dst(4) sport(2) dport(2)
        1 => {
            let (Some(src), Some(port)) = (rest.get(0..4), rest.get(8..10)) else {
                return Err(ProxyError::Malformed);
            };
            let src: [u8; 4] = src.try_into().map_err(|_| ProxyError::Malformed)?;
            Ok(SocketAddr::new(Ipv4Addr::from(src).into(), port_of(port)?))
        }
        // AF_INET6: src(16) dst(16) sport(2) dport(2)
        2 => {
            let (Some(src), Some(port)) = (rest.get(0..16), rest.get(32..34)) else {
                return Err(ProxyError::Malformed);
            };
            let src: [u8; 16] = src.try_into().map_err(|_| ProxyError::Malformed)?;
            Ok(SocketAddr::new(Ipv6Addr::from(src).into(), port_of(port)?))
        }
        // AF_UNSPEC, AF_UNIX: no IP client to name.
        0 | 3 => Ok(peer),
        _ => Err(ProxyError::Malformed),
    }
}

fn port_of(bytes: &[u8]) -> Result<u16, ProxyError> {
    let bytes: [u8; 2] = bytes.try_into().map_err(|_| ProxyError::Malformed)?;
    Ok(u16::from_be_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 40000);

    async fn read_all(input: &[u8]) -> (Result<SocketAddr, ProxyError>, Vec<u8>) {
        let mut cursor = input;
        let result = read_header(&mut cursor, PEER, Duration::from_secs(1)).await;
        (result, cursor.to_vec())
    }

    fn v2(cmd: u8, family: u8, addresses: &[u8]) -> Vec<u8> {
        let mut h = V2_SIGNATURE.to_vec();
        h.extend([0x20 | cmd, family]);
        h.extend((addresses.len() as u16).to_be_bytes());
        h.extend(addresses);
        h
    }

    #[tokio::test]
    async fn v1_names_the_client_and_leaves_the_request_unread() {
        let (r, rest) =
            read_all(b"PROXY TCP4 203.0.113.7 10.0.0.1 51234 8080\r\nPOST / HTTP/1.1\r\n").await;
        assert_eq!(r.unwrap(), "203.0.113.7:51234".parse().unwrap());
        assert_eq!(rest, b"POST / HTTP/1.1\r\n");
        let (r, _) = read_all(b"PROXY TCP6 2001:db8::1 ::1 1 2\r\n").await;
        assert_eq!(r.unwrap(), "[2001:db8::1]:1".parse().unwrap());
        let (r, _) = read_all(b"PROXY UNKNOWN\r\n").await;
        assert_eq!(r.unwrap(), PEER);
    }

    #[tokio::test]
    async fn v2_names_the_client_and_skips_tlvs() {
        let mut addrs = vec![198, 51, 100, 9, 10, 0, 0, 1];
        addrs.extend(4242u16.to_be_bytes());
        addrs.extend(8080u16.to_be_bytes());
        addrs.extend([0x04, 0x00, 0x01, 0xaa]); // a NOOP TLV
        let mut input = v2(1, 0x11, &addrs);
        input.extend(b"GET");
        let (r, rest) = read_all(&input).await;
        assert_eq!(r.unwrap(), "198.51.100.9:4242".parse().unwrap());
        assert_eq!(rest, b"GET");
        let mut addrs6 = vec![0u8; 36];
        addrs6[0] = 0x20;
        addrs6[1] = 0x01;
        addrs6[15] = 5;
        addrs6[33] = 80;
        let (r, _) = read_all(&v2(1, 0x21, &addrs6)).await;
        assert_eq!(r.unwrap(), "[2001::5]:80".parse().unwrap());
        let (r, _) = read_all(&v2(0, 0x00, &[])).await;
        assert_eq!(r.unwrap(), PEER, "LOCAL names no client");
    }

    #[tokio::test]
    async fn anything_else_is_refused() {
        for bad in [
            &b"POST /v1/traces HTTP/1.1\r\n\r\n"[..],
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
            b"PROXY TCP4 1.2.3.400 5.6.7.8 1 2\r\n",
            b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
            b"PROXY TCP4 1.2.3.4",
        ] {
            assert!(
                read_all(bad).await.0.is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let mut long = b"PROXY UNKNOWN ".to_vec();
        long.extend([b'x'; 200]);
        assert!(matches!(
            read_all(&long).await.0,
            Err(ProxyError::Malformed)
        ));
        assert!(
            read_all(&v2(1, 0x11, &[1, 2, 3])).await.0.is_err(),
            "short v2 addresses"
        );
    }

    #[tokio::test]
    async fn a_silent_client_times_out() {
        let (_client, mut server) = tokio::io::duplex(64);
        let r = read_header(&mut server, PEER, Duration::from_millis(50)).await;
        assert!(matches!(r, Err(ProxyError::Timeout)));
    }
}
