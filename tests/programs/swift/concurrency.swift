// async/await: child tasks in a task group, each storing records in an actor. Every record is a
// class instance made in `Ledger.add(_:)` (2,000 in all), whatever thread runs the task.
final class Entry {
    let task: Int
    let index: Int
    init(task: Int, index: Int) {
        self.task = task
        self.index = index
    }
}

actor Ledger {
    var entries: [Entry] = []
    init() { entries.reserveCapacity(2_000) }
    @inline(never) func add(task: Int, index: Int) {
        entries.append(Entry(task: task, index: index))
    }
    func count() -> Int { entries.count }
}

@inline(never) func work(_ ledger: Ledger, task: Int) async {
    for i in 0..<20 { await ledger.add(task: task, index: i) }
}

@main
struct Main {
    static func main() async {
        let ledger = Ledger()
        await withTaskGroup(of: Void.self) { group in
            for t in 0..<100 {
                group.addTask { await work(ledger, task: t) }
            }
        }
        print("concurrency", await ledger.count())
    }
}
