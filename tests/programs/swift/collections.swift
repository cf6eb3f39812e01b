// Array, Dictionary and String growth. Every change of an array's or dictionary's capacity is
// one new buffer; the program counts them and prints the counts, which the recording must see
// on these functions' stacks.
@inline(never) func growArray(_ n: Int) -> (Int, [Int]) {
    var a: [Int] = []
    var grown = 0
    var capacity = a.capacity
    for i in 0..<n {
        a.append(i)
        if a.capacity != capacity {
            grown += 1
            capacity = a.capacity
        }
    }
    return (grown, a)
}

@inline(never) func growDictionary(_ n: Int) -> (Int, [Int: Int]) {
    var d: [Int: Int] = [:]
    var grown = 0
    var capacity = d.capacity
    for i in 0..<n {
        d[i] = i &* 3
        if d.capacity != capacity {
            grown += 1
            capacity = d.capacity
        }
    }
    return (grown, d)
}

@inline(never) func growString(_ n: Int) -> String {
    var s = ""
    for i in 0..<n { s += "item \(i % 10), " }
    return s
}

let (arrayGrowths, array) = growArray(100_000)
let (dictionaryGrowths, dictionary) = growDictionary(20_000)
let string = growString(5_000)
print("collections array-growths \(arrayGrowths) dictionary-growths \(dictionaryGrowths)",
      array.count, dictionary.count, string.utf8.count)
