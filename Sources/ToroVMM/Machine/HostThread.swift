import CKVM
import Glibc

/// A joinable host thread running a Swift closure.
struct HostThread {
    let handle: pthread_t

    private final class Body {
        let run: () -> Void
        init(_ run: @escaping () -> Void) { self.run = run }
    }

    /// Starts `body` on a new thread; `name` shows in `top -H` and `ps -L` (15 characters at most).
    static func spawn(name: String, _ body: @escaping () -> Void) throws(VMMError) -> HostThread {
        let context = Unmanaged.passRetained(Body(body)).toOpaque()
        var handle = pthread_t()
        let result = pthread_create(&handle, nil, { context in
            let body = Unmanaged<Body>.fromOpaque(context!).takeRetainedValue()
            body.run()
            return nil
        }, context)
        guard result == 0 else {
            Unmanaged<Body>.fromOpaque(context).release()
            throw .host("cannot start thread \(name): \(String(cString: strerror(result)))")
        }
        ckvm_set_thread_name(handle, String(name.prefix(15)))
        return HostThread(handle: handle)
    }

    func join() { pthread_join(handle, nil) }
}

/// Signal numbers the VMM uses between its own threads.
enum VMMSignal {
    /// Sent to a vCPU thread to make KVM_RUN return.
    static let kick = SIGUSR1
    /// Sent to the main thread when a vCPU thread stops the VM.
    static let stopped = SIGUSR2
}

/// A set of signals, for pthread_sigmask and sigtimedwait.
func signalSet(_ signals: [Int32]) -> sigset_t {
    var set = sigset_t()
    sigemptyset(&set)
    for signal in signals { sigaddset(&set, signal) }
    return set
}
