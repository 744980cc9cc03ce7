"""ctypes bindings to the Linux calls a debugger needs: ptrace, waitpid,
process_vm_readv, tgkill, and small /proc readers. No policy lives here."""
