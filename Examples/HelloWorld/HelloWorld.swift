import ToroKernel

/// The first Toro application: a greeting, then a tour of the runtime the
/// kernel provides (heap-backed arrays, classes and dictionaries).
///
/// `exit=N` on the kernel command line makes it stop with status N, which the
/// host tests use to check that exit statuses reach toro-vmm.
@main
struct HelloWorld {
    static func main() {
        print("Hello from Embedded Swift on Toro!")

        var numbers: [Int] = []
        for number in 1...4 {
            numbers.append(number)
        }
        // Embedded Swift has no reflection, so arrays do not print themselves.
        let listed = numbers.map { String($0) }.joined(separator: ", ")
        print("array: [\(listed)] sum=\(numbers.reduce(0, +))")

        do {
            let greeter = Greeter(name: "Toro")
            print("class: \(greeter.greeting())")
        }  // the last reference goes here, and deinit prints

        var facts: [String: Int] = [:]
        facts["cpus"] = BootInfo.current.cpuCount
        facts["memoryMiB"] = Int(BootInfo.current.memorySize >> 20)
        facts["answer"] = 42
        print("dictionary: count=\(facts.count) answer=\(facts["answer"] ?? 0) cpus=\(facts["cpus"] ?? 0)")

        if let status = requestedExitStatus(BootInfo.current.commandLine) {
            Kernel.exit(status: status)
        }
    }

    /// The N of an `exit=N` word in `commandLine`, if there is one.
    static func requestedExitStatus(_ commandLine: String) -> Int? {
        for word in commandLine.split(separator: " ") where word.hasPrefix("exit=") {
            return Int(word.dropFirst("exit=".count))
        }
        return nil
    }
}

/// A class, to show reference counting: `deinit` runs when the last reference goes.
final class Greeter {
    let name: String

    init(name: String) {
        self.name = name
    }

    func greeting() -> String {
        "\(name) says hello"
    }

    deinit {
        print("class: \(name) deinitialized")
    }
}
