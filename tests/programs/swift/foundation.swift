// Foundation: JSONEncoder and Data, 200 times each.
import Foundation

struct Order: Codable {
    var id: Int
    var customer: String
    var items: [String]
    var total: Double
}

@inline(never) func encodeOrders(_ orders: [Order]) -> Int {
    let encoder = JSONEncoder()
    var bytes = 0
    for order in orders {
        bytes += (try! encoder.encode(order)).count
    }
    return bytes
}

@inline(never) func buildData(_ n: Int) -> Int {
    var total = 0
    for i in 0..<n {
        var data = Data()
        for j in 0..<64 { data.append(contentsOf: [UInt8(truncatingIfNeeded: i &+ j)]) }
        total += data.count
    }
    return total
}

let orders = (0..<200).map {
    Order(id: $0, customer: "customer-\($0)", items: ["a", "b", "c"], total: Double($0) * 1.5)
}
print("foundation", encodeOrders(orders), buildData(200))
