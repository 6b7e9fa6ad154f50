// The committed corpora of the fuzz targets, for the replay tests of `make test`.

import Foundation

public enum FuzzCorpus {
    /// Tests/Fuzz/`target`/corpus: the seeds and every input that once found a bug.
    public static func directory(of target: String) -> URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fuzz/\(target)/corpus")
    }

    /// Runs every file of `target`'s corpus through `check`, the same check its
    /// libFuzzer target runs, and says what went wrong: one line per file that
    /// broke an invariant, or that there is no corpus at all. Empty when all held.
    public static func failures(of target: String, _ check: ([UInt8]) throws(FuzzViolation) -> Void) -> [String] {
        let corpus = directory(of: target)
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: corpus.path).sorted(), !names.isEmpty
        else { return ["no corpus in \(corpus.path)"] }
        var failures: [String] = []
        for name in names {
            guard let data = FileManager.default.contents(atPath: corpus.appendingPathComponent(name).path) else {
                failures.append("\(target)/corpus/\(name): unreadable")
                continue
            }
            do {
                try check([UInt8](data))
            } catch {
                failures.append("\(target)/corpus/\(name): \(error)")
            }
        }
        return failures
    }
}
