//! redirfs's FUSE backend (Linux, macOS): each kernel request becomes one fs-core overlay call
//! and one reply. The logic lives in [`fs_core::overlay`]; this crate chooses cache lifetimes,
//! negotiates kernel features, hands open files to the kernel for passthrough I/O, and maps
//! [`fs_core::Error`] to errno.

#![cfg(unix)]
// The only unsafe code is fusermount3's socket protocol, in `fusermount`.
#![deny(unsafe_code)]

mod errno;
mod fs;
mod fusermount;
pub mod mount;

pub use errno::errno_of;
pub use fs::{FuseOverlay, Tuning};
pub use mount::{
    mount, mount_with, unmount, Invalidator, MountError, Mounted, TableMaker, Unmounter,
    KERNEL_FLAGS,
};
