// swift-tools-version:6.0
//
// The host side of Toro for Swift: the C shim over <linux/kvm.h>, the VMM
// library, the `toro-vmm` command and the tests. The guest kernel under
// Sources/ToroKernel is Embedded Swift for x86_64-unknown-none-elf and is built
// by scripts/build-image.sh (see the Makefile), not by this manifest.
import Foundation
import PackageDescription

/// The kernel files that are plain Swift with no kernel imports: built for the
/// host as ToroKernelPortable (and unit-tested there), and into every image.
let kernelPortableSources = [
    "Memory/FreeListAllocator.swift",
    "Memory/BlockHeader.swift",
    "Memory/RemoteFreeList.swift",
    "Memory/CoreHeap.swift",
    "Memory/PageRun.swift",
    "Memory/PageRunAllocator.swift",
    "Memory/PageTableEntry.swift",
    "Boot/KernelCommandLine.swift",
    "Time/TSCConversion.swift",
    "Time/TimerQueue.swift",
    "Arch/Descriptors.swift",
    "Arch/TickRatio.swift",
    "Scheduler/RunQueue.swift",
    "Scheduler/IncomingQueue.swift",
    "Scheduler/CoreRunQueues.swift",
    "Scheduler/WaiterList.swift",
    "Scheduler/ParkPermit.swift",
    "Scheduler/PollState.swift",
    "Scheduler/ThreadState.swift",
    "Net/Packets.swift",
    "Net/TCPSegment.swift",
    "Net/TCPConnection.swift",
    "Net/TCPByteRing.swift",
    "Net/UDPDatagram.swift",
    "Net/ByteCopy.swift",
    "Net/NetStackCore.swift",
]

/// Every file under `folder` (relative to the package) except `kept`: what a
/// target that takes a few files of a folder excludes, so that SwiftPM does
/// not warn about the rest. Computed, so a new kernel file needs no edit here.
func everything(in folder: String, except kept: [String]) -> [String] {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(folder)
    guard let walker = FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.isRegularFileKey]) else { return [] }
    var excluded: [String] = []
    for case let url as URL in walker where (try? url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true {
        let relative = String(url.standardizedFileURL.path.dropFirst(root.standardizedFileURL.path.count + 1))
        if !kept.contains(relative) { excluded.append(relative) }
    }
    return excluded.sorted()
}

let package = Package(
    name: "toro",
    products: [
        .executable(name: "toro-vmm", targets: ["toro-vmm"]),
        .library(name: "ToroVMM", targets: ["ToroVMM"]),
    ],
    targets: [
        .target(
            name: "CKVM",
            path: "Sources/CKVM",
            cSettings: [.headerSearchPath("../../boot")]
        ),
        .target(
            name: "ToroVMM",
            dependencies: ["CKVM"],
            path: "Sources/ToroVMM"
        ),
        // The kernel's portable logic (allocators, queues, parsers: plain Swift with
        // no kernel imports), compiled for the host so that it is unit-tested there.
        // The same files are built into every image by scripts/build-image.sh.
        .target(
            name: "ToroKernelPortable",
            path: "Sources/ToroKernel",
            exclude: everything(in: "Sources/ToroKernel", except: kernelPortableSources),
            sources: kernelPortableSources
        ),
        // The WebServer example's HTTP/1.1 core (parsing, responses, the per-connection
        // engine, the pages): plain Swift with no imports, built into the WebServer
        // image by scripts/build-image.sh and here for the host tests. Its main file,
        // which uses the kernel's sockets, stays out.
        .target(
            name: "WebServerCore",
            path: "Examples/WebServer",
            exclude: ["WebServer.swift"],
            sources: [
                "HTTPRequest.swift",
                "HTTPResponse.swift",
                "HTTPSession.swift",
                "Site.swift",
            ]
        ),
        .executableTarget(
            name: "toro-vmm",
            dependencies: ["ToroVMM"],
            path: "Sources/toro-vmm"
        ),
        // The fuzz checks' shared reader and the corpus replay (Tests/Fuzz, make fuzz).
        .target(
            name: "FuzzSupport",
            path: "Tests/FuzzSupport"
        ),
        .testTarget(
            name: "ToroVMMTests",
            dependencies: ["ToroVMM", "CKVM", "FuzzSupport"],
            path: "Tests/ToroVMMTests"
        ),
        .testTarget(
            name: "ToroKernelTests",
            dependencies: ["ToroKernelPortable", "FuzzSupport"],
            path: "Tests/ToroKernelTests"
        ),
        .testTarget(
            name: "WebServerTests",
            dependencies: ["WebServerCore", "FuzzSupport"],
            path: "Tests/WebServerTests"
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["ToroVMM", "WebServerCore"],
            path: "Tests/IntegrationTests"
        ),
    ]
)
