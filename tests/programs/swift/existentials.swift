// Existential boxes: a value too large for an existential's three-word inline buffer is boxed
// on the heap when stored as `any Shape` (one box per rectangle, 5,000); a small one is not.
protocol Shape { func area() -> Double }

struct Rectangle: Shape {
    var x: Double, y: Double, width: Double, height: Double
    func area() -> Double { width * height }
}

struct Circle: Shape {
    var radius: Double
    func area() -> Double { 3.14159 * radius * radius }
}

@inline(never) func makeShapes(_ n: Int) -> [any Shape] {
    var shapes: [any Shape] = []
    shapes.reserveCapacity(2 * n)
    for i in 0..<n {
        shapes.append(Rectangle(x: 0, y: 0, width: Double(i), height: 2))
        shapes.append(Circle(radius: Double(i)))
    }
    return shapes
}

@inline(never) func totalArea(_ shapes: [any Shape]) -> Double {
    shapes.reduce(0) { $0 + $1.area() }
}

print("existentials", totalArea(makeShapes(5_000)))
