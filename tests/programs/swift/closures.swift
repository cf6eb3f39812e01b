// Escaping closures capturing context: one context object per closure made (3,000), and a
// mutable capture's box.
@inline(never) func makeGreeter(_ name: String, _ times: Int) -> () -> Int {
    return { name.utf8.count &* times }
}

@inline(never) func makeCounter(_ start: Int) -> () -> Int {
    var count = start
    return {
        count &+= 1
        return count
    }
}

@inline(never) func run(_ closures: [() -> Int]) -> Int {
    closures.reduce(0) { $0 &+ $1() }
}

var closures: [() -> Int] = []
closures.reserveCapacity(4_000)
for i in 0..<3_000 { closures.append(makeGreeter("swift-\(i % 10)", i)) }
for i in 0..<1_000 { closures.append(makeCounter(i)) }
print("closures", run(closures))
