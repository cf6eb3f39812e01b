// A small HTTP server and client over loopback, ten requests: the server answers on a thread of
// its own (BSD sockets through Glibc), the client awaits each response with URLSession's
// async API, the shape of the Swift server guide's AsyncHTTPClient example.
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
#if canImport(Glibc)
import Glibc
#endif

let requests = 10

@inline(never) func listenOnLoopback() -> (Int32, UInt16) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    precondition(fd >= 0)
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) }
    }
    precondition(bound == 0 && listen(fd, 16) == 0)
    _ = withUnsafeMutablePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
    }
    return (fd, UInt16(bigEndian: addr.sin_port))
}

@inline(never) func respond(_ client: Int32, _ n: Int) {
    var request = [UInt8](repeating: 0, count: 4096)
    var got = 0
    while got < request.count {
        let r = request.withUnsafeMutableBytes { read(client, $0.baseAddress! + got, $0.count - got) }
        if r <= 0 { break }
        got += r
        if String(decoding: request[0..<got], as: UTF8.self).contains("\r\n\r\n") { break }
    }
    let body = "{\"request\": \(n), \"message\": \"hello from the loopback server\"}"
    let response = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
    var bytes = Array(response.utf8)
    _ = bytes.withUnsafeMutableBytes { write(client, $0.baseAddress!, $0.count) }
    close(client)
}

@inline(never) func serve(_ fd: Int32) {
    for n in 0..<requests {
        let client = accept(fd, nil, nil)
        if client < 0 { return }
        respond(client, n)
    }
    close(fd)
}

@inline(never) func fetch(_ session: URLSession, _ url: URL) async throws -> Int {
    let (data, response) = try await session.data(from: url)
    precondition((response as! HTTPURLResponse).statusCode == 200)
    return data.count
}

@main
struct Main {
    static func main() async throws {
        let (fd, port) = listenOnLoopback()
        let server = Thread { serve(fd) }
        server.start()
        let configuration = URLSessionConfiguration.ephemeral
        configuration.httpMaximumConnectionsPerHost = 1
        let session = URLSession(configuration: configuration)
        let url = URL(string: "http://127.0.0.1:\(port)/hello")!
        var bytes = 0
        for _ in 0..<requests { bytes += try await fetch(session, url) }
        session.finishTasksAndInvalidate()
        print("http", requests, bytes)
    }
}
