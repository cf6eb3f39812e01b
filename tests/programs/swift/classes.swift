// Class instances: one swift_allocObject per Node (10,000), one per generic Box<Int> (2,000).
// The list is kept alive and summed, so no instance can be promoted to the stack.
final class Node {
    let value: Int
    let next: Node?
    init(_ value: Int, _ next: Node?) {
        self.value = value
        self.next = next
    }
}

final class Box<T> {
    let item: T
    init(_ item: T) { self.item = item }
}

@inline(never) func makeNodes(_ n: Int) -> Node? {
    var head: Node? = nil
    for i in 0..<n { head = Node(i, head) }
    return head
}

@inline(never) func makeBoxes(_ n: Int) -> [Box<Int>] {
    var boxes: [Box<Int>] = []
    boxes.reserveCapacity(n)
    for i in 0..<n { boxes.append(Box(i)) }
    return boxes
}

@inline(never) func sum(_ list: Node?) -> Int {
    var total = 0
    var node = list
    while let n = node {
        total &+= n.value
        node = n.next
    }
    return total
}

let list = makeNodes(10_000)
let boxes = makeBoxes(2_000)
print("classes", sum(list), boxes.reduce(0) { $0 &+ $1.item })
