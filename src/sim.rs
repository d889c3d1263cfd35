//! (in progress: the processor simulator logic, issue 3)
