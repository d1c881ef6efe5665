//! Inputs shared by the benchmarks: a realistic mix of requests.

/// A small GET, as a health check or API client sends it.
pub const SMALL_GET: &[u8] = b"GET /health HTTP/1.1\r\nHost: api.example.com\r\n\r\n";

/// A browser navigation: 12 header fields, cookies and a long user agent.
pub const BROWSER_GET: &[u8] = b"GET /products/shoes/running?color=blue&size=42&sort=price_asc HTTP/1.1\r\n\
Host: shop.example.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\n\
Accept-Language: en-GB,en;q=0.9,fr;q=0.7\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Referer: https://shop.example.com/products/shoes?page=2\r\n\
Cookie: sessionid=3f8a9c2b7e6d4a1f9c8b7a6e5d4c3b2a; csrftoken=Zx8Yw7Vu6Ts5Rq4Po3Nm2Lk1Jj0Ii9Hh; theme=dark\r\n\
Connection: keep-alive\r\n\
Upgrade-Insecure-Requests: 1\r\n\
Sec-Fetch-Dest: document\r\n\
Sec-Fetch-Mode: navigate\r\n\
Cache-Control: max-age=0\r\n\r\n";

/// A JSON POST with a Content-Length body.
pub const POST_JSON: &[u8] = b"POST /api/v1/orders HTTP/1.1\r\n\
Host: api.example.com\r\n\
Content-Type: application/json\r\n\
Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abcdefghijklmnop\r\n\
Content-Length: 96\r\n\r\n\
{\"customer\": 1234, \"items\": [{\"sku\": \"A-100\", \"qty\": 2}, {\"sku\": \"B-200\", \"qty\": 1}], \"ship\": 1}";

/// A chunked upload: four chunks of 256 bytes, one with an extension, and a trailer.
pub fn chunked_upload() -> Vec<u8> {
    let mut out = b"POST /upload HTTP/1.1\r\nHost: files.example.com\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for i in 0..4u8 {
        if i == 2 {
            out.extend_from_slice(b"100;name=value\r\n");
        } else {
            out.extend_from_slice(b"100\r\n");
        }
        out.extend(std::iter::repeat_n(b'a' + i, 256));
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\nX-Checksum: 1234\r\n\r\n");
    out
}

/// The whole mix, one request of each kind.
pub fn mix() -> Vec<Vec<u8>> {
    vec![SMALL_GET.to_vec(), BROWSER_GET.to_vec(), POST_JSON.to_vec(), chunked_upload()]
}
