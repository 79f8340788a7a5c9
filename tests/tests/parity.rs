//! Parity: each operation runs in a fresh directory inside a `transparent` target through the
//! mount, inside the base through the mount, and in a native twin directory beside them; the
//! results and errnos must be the same in all three.

// Mounts through the Linux harness (tests/src/lib.rs).
#![cfg(target_os = "linux")]

use std::ffi::{CString, OsStr};
use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use fuse_backend::Tuning;
use tests::{errno, require_fuse, Mount, Sandbox};

/// A mount with a base and one transparent entry, and a native twin directory beside them.
struct Twin {
    m: Mount,
    tuning: &'static str,
}

const DECL: &str = "base: base\nredirections:\n  - path: t\n    target: vol\n    as: transparent\n";

impl Twin {
    fn new() -> Twin {
        Twin::with(Tuning::default(), "default tuning")
    }

    fn with(tuning: Tuning, label: &'static str) -> Twin {
        let sb = Sandbox::new();
        sb.dir("base");
        sb.dir("vol");
        sb.dir("native");
        Twin {
            m: sb.mount_with(DECL, tuning),
            tuning: label,
        }
    }

    /// The three places a case runs in.
    fn roots(&self, case: &str) -> [(&'static str, PathBuf); 3] {
        [
            ("transparent target", self.m.at("t").join(case)),
            ("base", self.m.at(case)),
            ("native", self.m.real("native").join(case)),
        ]
    }

    /// Runs `op` in a fresh directory `case` under each root; one assertion compares them.
    fn check(&self, case: &str, op: impl Fn(&Path) -> io::Result<String>) {
        let mut results = Vec::new();
        for (label, dir) in self.roots(case) {
            std::fs::create_dir(&dir)
                .unwrap_or_else(|e| panic!("{case}: mkdir {}: {e}", dir.display()));
            results.push((label, outcome(op(&dir))));
        }
        let native = &results[2].1;
        for (label, got) in &results[..2] {
            assert_eq!(
                got, native,
                "{case}: through the mount ({label}, {}) differs from the native directory",
                self.tuning
            );
        }
    }
}

/// Runs `f` on a mount with passthrough I/O (when the kernel offers it) and on one without.
fn each_tuning(f: impl Fn(&Twin)) {
    f(&Twin::new());
    let daemon_io = Tuning {
        passthrough: false,
        ..Tuning::default()
    };
    f(&Twin::with(daemon_io, "passthrough off"));
}

/// A new (or emptied) file, open for reading and writing.
fn new_rw(p: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(p)
}

/// The summary of an operation: its result, or its errno.
fn outcome(r: io::Result<String>) -> String {
    match r {
        Ok(s) => format!("ok: {s}"),
        Err(e) => format!("error: {}", errname(&e)),
    }
}

/// A step's result, without stopping at an error.
fn res<T: Debug>(r: io::Result<T>) -> String {
    match r {
        Ok(v) => format!("{v:?}"),
        Err(e) => errname(&e),
    }
}

fn errname(e: &io::Error) -> String {
    let Some(code) = e.raw_os_error() else {
        return format!("{e}");
    };
    let name = match code {
        libc::ENOENT => "ENOENT",
        libc::EEXIST => "EEXIST",
        libc::ENOTDIR => "ENOTDIR",
        libc::EISDIR => "EISDIR",
        libc::ENOTEMPTY => "ENOTEMPTY",
        libc::EPERM => "EPERM",
        libc::EACCES => "EACCES",
        libc::EINVAL => "EINVAL",
        libc::ENODATA => "ENODATA",
        libc::ERANGE => "ERANGE",
        libc::ENXIO => "ENXIO",
        libc::EBADF => "EBADF",
        libc::EIO => "EIO",
        libc::EXDEV => "EXDEV",
        libc::EROFS => "EROFS",
        libc::ENAMETOOLONG => "ENAMETOOLONG",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::EADDRINUSE => "EADDRINUSE",
        libc::ETXTBSY => "ETXTBSY",
        libc::EBUSY => "EBUSY",
        libc::ELOOP => "ELOOP",
        libc::EFBIG => "EFBIG",
        _ => return format!("errno {code}"),
    };
    name.to_string()
}

fn c(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).expect("no NUL in test paths")
}

fn cname(s: &str) -> CString {
    CString::new(s).expect("no NUL in test names")
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn cvt_size(r: libc::ssize_t) -> io::Result<usize> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

fn cvt_off(r: libc::off_t) -> io::Result<i64> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// open(2) with raw flags.
fn open(p: &Path, flags: i32, mode: u32) -> io::Result<File> {
    let fd = cvt(unsafe { libc::open(c(p).as_ptr(), flags | libc::O_CLOEXEC, mode) })?;
    // SAFETY: a fresh descriptor nothing else owns.
    Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) })
}

fn renameat2(a: &Path, b: &Path, flags: u32) -> io::Result<()> {
    cvt(unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            c(a).as_ptr(),
            libc::AT_FDCWD,
            c(b).as_ptr(),
            flags,
        )
    })
    .map(drop)
}

fn ts(sec: i64, nsec: i64) -> libc::timespec {
    libc::timespec {
        tv_sec: sec,
        tv_nsec: nsec,
    }
}

fn utimensat(p: &Path, a: libc::timespec, m: libc::timespec, flags: i32) -> io::Result<()> {
    let times = [a, m];
    cvt(unsafe { libc::utimensat(libc::AT_FDCWD, c(p).as_ptr(), times.as_ptr(), flags) }).map(drop)
}

/// The type, permission bits, owner, size and link count of `p` (not following a last link).
fn meta(p: &Path) -> io::Result<String> {
    let m = std::fs::symlink_metadata(p)?;
    let ft = m.file_type();
    let kind = if ft.is_dir() {
        "dir"
    } else if ft.is_symlink() {
        "symlink"
    } else if ft.is_file() {
        "file"
    } else {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            "fifo"
        } else if ft.is_socket() {
            "socket"
        } else if ft.is_char_device() {
            "chardev"
        } else {
            "other"
        }
    };
    let size = if ft.is_dir() { 0 } else { m.size() };
    Ok(format!(
        "{kind} {:o} {}:{} size={size} nlink={}",
        m.mode() & 0o7777,
        m.uid(),
        m.gid(),
        m.nlink()
    ))
}

/// atime and mtime of `p`, exactly (not following a last link).
fn times(p: &Path) -> io::Result<String> {
    let m = std::fs::symlink_metadata(p)?;
    Ok(format!(
        "atime={}.{:09} mtime={}.{:09}",
        m.atime(),
        m.atime_nsec(),
        m.mtime(),
        m.mtime_nsec()
    ))
}

fn read(p: &Path) -> io::Result<String> {
    let b = std::fs::read(p)?;
    Ok(String::from_utf8_lossy(&b).into_owned())
}

// ---------------------------------------------------------------------------------------------
// open

#[test]
fn open_excl_on_an_existing_name_is_eexist() {
    require_fuse!();
    Twin::new().check("excl", |d| {
        std::fs::write(d.join("f"), "x")?;
        std::fs::create_dir(d.join("sub"))?;
        std::os::unix::fs::symlink("nowhere", d.join("dangling"))?;
        let excl = libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY;
        Ok(format!(
            "file={} dir={} dangling={} new={} again={}",
            res(open(&d.join("f"), excl, 0o644)),
            res(open(&d.join("sub"), excl, 0o644)),
            res(open(&d.join("dangling"), excl, 0o644)),
            res(open(&d.join("new"), excl, 0o600).map(drop)),
            res(open(&d.join("new"), excl, 0o600).map(drop)),
        ))
    });
}

#[test]
fn open_creat_through_a_dangling_symlink_creates_its_target() {
    require_fuse!();
    Twin::new().check("creat_follow", |d| {
        std::os::unix::fs::symlink("made-by-follow", d.join("dl"))?;
        open(&d.join("dl"), libc::O_CREAT | libc::O_WRONLY, 0o600)?.write_all(b"via link")?;
        Ok(format!(
            "{} {}",
            read(&d.join("made-by-follow"))?,
            meta(&d.join("made-by-follow"))?
        ))
    });
}

#[test]
fn open_trunc_empties_the_file() {
    require_fuse!();
    each_tuning(|t| {
        t.check("trunc", |d| {
            let p = d.join("f");
            std::fs::write(&p, "hello world")?;
            let mut f = OpenOptions::new().write(true).truncate(true).open(&p)?;
            let after_open = read(&p)?;
            f.write_all(b"hi")?;
            drop(f);
            let after_write = read(&p)?;
            // Linux truncates on O_RDONLY|O_TRUNC too.
            let r = open(&p, libc::O_RDONLY | libc::O_TRUNC, 0).map(drop);
            Ok(format!(
                "{after_open:?} {after_write:?} rdonly={} {:?}",
                res(r),
                read(&p)?
            ))
        })
    });
}

#[test]
fn append_writes_land_at_the_end() {
    require_fuse!();
    each_tuning(|t| {
        t.check("append", |d| {
            let p = d.join("log");
            std::fs::write(&p, "abc")?;
            let mut f = OpenOptions::new().append(true).open(&p)?;
            f.write_all(b"def")?;
            let mut g = OpenOptions::new().append(true).open(&p)?;
            g.write_all(b"12")?;
            f.write_all(b"gh")?;
            // pwrite on an O_APPEND descriptor appends on Linux.
            f.write_at(b"XY", 0)?;
            let pos = f.stream_position()?;
            drop((f, g));
            Ok(format!("{:?} pos={pos}", read(&p)?))
        })
    });
}

#[test]
fn open_o_directory_on_a_file_is_enotdir() {
    require_fuse!();
    Twin::new().check("o_directory", |d| {
        std::fs::write(d.join("f"), "x")?;
        std::fs::create_dir(d.join("sub"))?;
        Ok(format!(
            "file={} dir={} missing={}",
            res(open(&d.join("f"), libc::O_RDONLY | libc::O_DIRECTORY, 0).map(drop)),
            res(open(&d.join("sub"), libc::O_RDONLY | libc::O_DIRECTORY, 0).map(drop)),
            res(open(&d.join("nope"), libc::O_RDONLY | libc::O_DIRECTORY, 0).map(drop)),
        ))
    });
}

#[test]
fn opening_one_file_for_reading_and_writing_at_once() {
    require_fuse!();
    each_tuning(|t| {
        t.check("shared_open", |d| {
            let p = d.join("f");
            std::fs::write(&p, "abcdef")?;
            // Read-only first, then read-write while it is open.
            let r = File::open(&p)?;
            let w = OpenOptions::new().read(true).write(true).open(&p)?;
            w.write_at(b"X", 0)?;
            let mut buf = [0u8; 6];
            r.read_exact_at(&mut buf, 0)?;
            let first = String::from_utf8_lossy(&buf).into_owned();
            drop((r, w));
            // Write-only first, then read-only while it is open.
            let w = OpenOptions::new().write(true).open(&p)?;
            let r = File::open(&p)?;
            w.write_at(b"Y", 1)?;
            let mut buf = [0u8; 6];
            r.read_exact_at(&mut buf, 0)?;
            let second = String::from_utf8_lossy(&buf).into_owned();
            drop((r, w));
            // Append-only first, then a positioned write through a plain read-write open.
            let a = OpenOptions::new().append(true).open(&p)?;
            let w = OpenOptions::new().read(true).write(true).open(&p)?;
            w.write_at(b"Z", 2)?;
            let mut a = a;
            a.write_all(b"+")?;
            drop((a, w));
            Ok(format!("{first} {second} {}", read(&p)?))
        })
    });
}

// ---------------------------------------------------------------------------------------------
// names

#[test]
fn unlink_of_a_missing_name_is_enoent() {
    require_fuse!();
    Twin::new().check("unlink_missing", |d| {
        std::fs::create_dir(d.join("sub"))?;
        Ok(format!(
            "missing={} in_missing_dir={} dir={}",
            res(std::fs::remove_file(d.join("nope"))),
            res(std::fs::remove_file(d.join("nodir/nope"))),
            res(std::fs::remove_file(d.join("sub"))),
        ))
    });
}

#[test]
fn rmdir_of_a_non_empty_dir_is_enotempty() {
    require_fuse!();
    Twin::new().check("rmdir_nonempty", |d| {
        std::fs::create_dir(d.join("sub"))?;
        std::fs::write(d.join("sub/f"), "x")?;
        let first = res(std::fs::remove_dir(d.join("sub")));
        std::fs::remove_file(d.join("sub/f"))?;
        Ok(format!(
            "{first} then {}",
            res(std::fs::remove_dir(d.join("sub")))
        ))
    });
}

#[test]
fn rmdir_of_a_file_is_enotdir() {
    require_fuse!();
    Twin::new().check("rmdir_file", |d| {
        std::fs::write(d.join("f"), "x")?;
        std::os::unix::fs::symlink(".", d.join("link"))?;
        Ok(format!(
            "file={} link={} missing={}",
            res(std::fs::remove_dir(d.join("f"))),
            res(std::fs::remove_dir(d.join("link"))),
            res(std::fs::remove_dir(d.join("nope"))),
        ))
    });
}

#[test]
fn mkdir_of_an_existing_name_is_eexist() {
    require_fuse!();
    Twin::new().check("mkdir_existing", |d| {
        std::fs::write(d.join("f"), "x")?;
        let first = res(std::fs::create_dir(d.join("sub")));
        Ok(format!(
            "{first} dir={} file={} no_parent={} {}",
            res(std::fs::create_dir(d.join("sub"))),
            res(std::fs::create_dir(d.join("f"))),
            res(std::fs::create_dir(d.join("nope/sub"))),
            meta(&d.join("sub"))?,
        ))
    });
}

#[test]
fn rename_noreplace_onto_an_existing_name_is_eexist() {
    require_fuse!();
    Twin::new().check("noreplace", |d| {
        std::fs::write(d.join("a"), "A")?;
        std::fs::write(d.join("b"), "B")?;
        let onto = res(renameat2(
            &d.join("a"),
            &d.join("b"),
            libc::RENAME_NOREPLACE,
        ));
        let fresh = res(renameat2(
            &d.join("a"),
            &d.join("c"),
            libc::RENAME_NOREPLACE,
        ));
        Ok(format!(
            "{onto} {fresh} a={} b={} c={}",
            res(read(&d.join("a"))),
            res(read(&d.join("b"))),
            res(read(&d.join("c")))
        ))
    });
}

#[test]
fn rename_exchange_swaps_the_two_names() {
    require_fuse!();
    Twin::new().check("exchange", |d| {
        std::fs::write(d.join("a"), "A")?;
        std::fs::write(d.join("b"), "B")?;
        std::fs::create_dir(d.join("dir"))?;
        std::fs::write(d.join("dir/inside"), "I")?;
        // Read both first, so the kernel holds their inodes when they swap.
        let before = format!("{}{}", read(&d.join("a"))?, read(&d.join("b"))?);
        let swap = res(renameat2(&d.join("a"), &d.join("b"), libc::RENAME_EXCHANGE));
        let files = format!("a={} b={}", read(&d.join("a"))?, read(&d.join("b"))?);
        let mixed = res(renameat2(
            &d.join("a"),
            &d.join("dir"),
            libc::RENAME_EXCHANGE,
        ));
        let after = format!(
            "a={} dir={} a/inside={}",
            meta(&d.join("a"))?,
            meta(&d.join("dir"))?,
            res(read(&d.join("a/inside")))
        );
        let missing = res(renameat2(
            &d.join("b"),
            &d.join("nope"),
            libc::RENAME_EXCHANGE,
        ));
        let both = res(renameat2(
            &d.join("b"),
            &d.join("a"),
            libc::RENAME_EXCHANGE | libc::RENAME_NOREPLACE,
        ));
        // Swapping back through the new names.
        let back = res(renameat2(
            &d.join("dir"),
            &d.join("a"),
            libc::RENAME_EXCHANGE,
        ));
        Ok(format!(
            "{before} {swap} {files} {mixed} {after} {missing} {both} {back} dir/inside={} a={}",
            res(read(&d.join("dir/inside"))),
            res(read(&d.join("a")))
        ))
    });
}

#[test]
fn rename_errors_match() {
    require_fuse!();
    Twin::new().check("rename_errors", |d| {
        std::fs::create_dir_all(d.join("full/x"))?;
        std::fs::create_dir(d.join("empty"))?;
        std::fs::create_dir(d.join("src"))?;
        std::fs::write(d.join("f"), "f")?;
        std::fs::write(d.join("g"), "g")?;
        std::fs::hard_link(d.join("f"), d.join("f2"))?;
        Ok(format!(
            "onto_full={} onto_empty={} file_onto_dir={} dir_onto_file={} into_itself={} missing={} onto_hardlink={} f={} f2={} onto_file={} g={}",
            res(std::fs::rename(d.join("src"), d.join("full"))),
            res(std::fs::rename(d.join("src"), d.join("empty"))),
            res(std::fs::rename(d.join("g"), d.join("full"))),
            res(std::fs::rename(d.join("full"), d.join("g"))),
            res(std::fs::rename(d.join("full"), d.join("full/x/y"))),
            res(std::fs::rename(d.join("nope"), d.join("z"))),
            res(std::fs::rename(d.join("f"), d.join("f2"))),
            res(read(&d.join("f"))),
            res(read(&d.join("f2"))),
            res(std::fs::rename(d.join("f"), d.join("g"))),
            res(read(&d.join("g"))),
        ))
    });
}

#[test]
fn link_to_a_directory_is_eperm() {
    require_fuse!();
    Twin::new().check("link_dir", |d| {
        std::fs::create_dir(d.join("sub"))?;
        std::fs::write(d.join("f"), "x")?;
        Ok(format!(
            "dir={} file={} again={} missing={} {}",
            res(std::fs::hard_link(d.join("sub"), d.join("l"))),
            res(std::fs::hard_link(d.join("f"), d.join("f2"))),
            res(std::fs::hard_link(d.join("f"), d.join("f2"))),
            res(std::fs::hard_link(d.join("nope"), d.join("n2"))),
            meta(&d.join("f2"))?,
        ))
    });
}

#[test]
fn readlink_on_a_file_is_einval() {
    require_fuse!();
    Twin::new().check("readlink", |d| {
        std::fs::write(d.join("f"), "x")?;
        std::fs::create_dir(d.join("sub"))?;
        std::os::unix::fs::symlink("f", d.join("l"))?;
        Ok(format!(
            "file={} dir={} missing={} link={} {}",
            res(std::fs::read_link(d.join("f"))),
            res(std::fs::read_link(d.join("sub"))),
            res(std::fs::read_link(d.join("nope"))),
            res(std::fs::read_link(d.join("l"))),
            meta(&d.join("l"))?
        ))
    });
}

#[test]
fn name_of_256_bytes_is_enametoolong() {
    require_fuse!();
    Twin::new().check("long_name", |d| {
        let long = "a".repeat(256);
        let max = "b".repeat(255);
        Ok(format!(
            "create={} stat={} mkdir={} symlink={} unlink={} rename_to={} max={} {}",
            res(std::fs::write(d.join(&long), "x")),
            res(std::fs::symlink_metadata(d.join(&long)).map(drop)),
            res(std::fs::create_dir(d.join(&long))),
            res(std::os::unix::fs::symlink("x", d.join(&long))),
            res(std::fs::remove_file(d.join(&long))),
            res(std::fs::write(d.join("s"), "s")
                .and_then(|()| std::fs::rename(d.join("s"), d.join(&long)))),
            res(std::fs::write(d.join(&max), "x")),
            meta(&d.join(&max))?,
        ))
    });
}

// ---------------------------------------------------------------------------------------------
// attributes

#[test]
fn chmod_and_chown_match() {
    require_fuse!();
    Twin::new().check("chmod_chown", |d| {
        let f = d.join("f");
        std::fs::write(&f, "x")?;
        std::os::unix::fs::symlink("f", d.join("l"))?;
        std::fs::create_dir(d.join("sub"))?;
        let mut steps = Vec::new();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640))?;
        steps.push(meta(&f)?);
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o6755))?;
        steps.push(meta(&f)?);
        // chown clears setuid and setgid on a file.
        std::os::unix::fs::chown(&f, Some(1234), None)?;
        steps.push(meta(&f)?);
        std::os::unix::fs::chown(&f, None, Some(1234))?;
        steps.push(meta(&f)?);
        std::os::unix::fs::lchown(d.join("l"), Some(1234), Some(1234))?;
        steps.push(format!("{} / {}", meta(&d.join("l"))?, meta(&f)?));
        // chmod through a link changes the file it names.
        std::fs::set_permissions(d.join("l"), std::fs::Permissions::from_mode(0o600))?;
        steps.push(format!("{} / {}", meta(&d.join("l"))?, meta(&f)?));
        std::fs::set_permissions(d.join("sub"), std::fs::Permissions::from_mode(0o2775))?;
        std::os::unix::fs::chown(d.join("sub"), Some(1234), Some(1234))?;
        steps.push(meta(&d.join("sub"))?);
        // Through a descriptor.
        let h = File::open(&f)?;
        cvt(unsafe { libc::fchmod(h.as_raw_fd(), 0o604) })?;
        cvt(unsafe { libc::fchown(h.as_raw_fd(), 0, 0) })?;
        steps.push(format!(
            "{} fstat={:o}",
            meta(&f)?,
            h.metadata()?.mode() & 0o7777
        ));
        steps.push(res(std::os::unix::fs::chown(d.join("nope"), Some(1), None)));
        Ok(steps.join(" | "))
    });
}

#[test]
fn truncate_up_and_down() {
    require_fuse!();
    each_tuning(|t| {
        t.check("truncate", |d| {
            let p = d.join("f");
            std::fs::write(&p, "0123456789")?;
            let mut steps = Vec::new();
            cvt(unsafe { libc::truncate(c(&p).as_ptr(), 100) })?;
            steps.push(format!(
                "{} {:?}",
                meta(&p)?,
                std::fs::read(&p)?.iter().rposition(|b| *b != 0)
            ));
            cvt(unsafe { libc::truncate(c(&p).as_ptr(), 3) })?;
            steps.push(format!("{} {:?}", meta(&p)?, read(&p)?));
            let f = OpenOptions::new().read(true).write(true).open(&p)?;
            f.set_len(50)?;
            steps.push(format!("{} fstat={}", meta(&p)?, f.metadata()?.len()));
            f.write_at(b"end", 47)?;
            f.set_len(1)?;
            steps.push(format!(
                "{} {:?} fstat={}",
                meta(&p)?,
                read(&p)?,
                f.metadata()?.len()
            ));
            steps.push(res(cvt(unsafe { libc::truncate(c(&p).as_ptr(), -1) })));
            steps.push(res(cvt(unsafe { libc::truncate(c(d).as_ptr(), 0) })));
            let ro = File::open(&p)?;
            steps.push(res(ro.set_len(0)));
            Ok(steps.join(" | "))
        })
    });
}

#[test]
fn utimensat_with_omit_now_and_explicit_times() {
    require_fuse!();
    Twin::new().check("utimens", |d| {
        let p = d.join("f");
        std::fs::write(&p, "x")?;
        std::os::unix::fs::symlink("f", d.join("l"))?;
        let omit = ts(0, libc::UTIME_OMIT);
        let now = ts(0, libc::UTIME_NOW);
        let mut steps = Vec::new();
        utimensat(
            &p,
            ts(1_000_000_000, 123_456_789),
            ts(1_500_000_000, 987_654_321),
            0,
        )?;
        steps.push(times(&p)?);
        utimensat(&p, omit, ts(1_600_000_000, 500_000_000), 0)?;
        steps.push(times(&p)?);
        utimensat(&p, ts(1_700_000_000, 1), omit, 0)?;
        steps.push(times(&p)?);
        utimensat(&p, omit, omit, 0)?;
        steps.push(times(&p)?);
        // Before the epoch, with and without nanoseconds.
        utimensat(&p, ts(-2, 500_000_000), ts(-100, 0), 0)?;
        steps.push(times(&p)?);
        utimensat(
            &p,
            ts(-1, 999_999_999),
            ts(-86_400 * 365 * 30, 250_000_000),
            0,
        )?;
        steps.push(times(&p)?);
        // The link itself, not what it names.
        utimensat(
            &d.join("l"),
            ts(1_111_111_111, 11),
            ts(1_222_222_222, 22),
            libc::AT_SYMLINK_NOFOLLOW,
        )?;
        steps.push(format!("{} / {}", times(&d.join("l"))?, times(&p)?));
        // "Now": compare with the clock (the file system's clock is coarse).
        let near_now = |sec: i64| {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            (sec - now).abs() <= 5
        };
        utimensat(&p, omit, now, 0)?;
        let m = std::fs::metadata(&p)?;
        steps.push(format!(
            "atime={}.{:09} mtime_now={}",
            m.atime(),
            m.atime_nsec(),
            near_now(m.mtime())
        ));
        utimensat(&p, now, omit, 0)?;
        let m = std::fs::metadata(&p)?;
        steps.push(format!(
            "atime_now={} mtime_now={}",
            near_now(m.atime()),
            near_now(m.mtime())
        ));
        utimensat(&p, ts(5, 5), ts(6, 6), 0)?;
        cvt(unsafe { libc::utimensat(libc::AT_FDCWD, c(&p).as_ptr(), std::ptr::null(), 0) })?;
        let m = std::fs::metadata(&p)?;
        steps.push(format!(
            "null: atime_now={} mtime_now={}",
            near_now(m.atime()),
            near_now(m.mtime())
        ));
        // Through a descriptor.
        let f = File::open(&p)?;
        let fts = [ts(2_000_000_000, 2), ts(2_000_000_001, 3)];
        cvt(unsafe { libc::futimens(f.as_raw_fd(), fts.as_ptr()) })?;
        steps.push(times(&p)?);
        steps.push(res(utimensat(&d.join("nope"), now, now, 0)));
        steps.push(res(utimensat(&p, ts(0, 1_000_000_000), omit, 0)));
        Ok(steps.join(" | "))
    });
}

#[test]
fn statfs_matches() {
    require_fuse!();
    Twin::new().check("statfs", |d| {
        let mut s = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
        cvt(unsafe { libc::statvfs(c(d).as_ptr(), s.as_mut_ptr()) })?;
        // SAFETY: statvfs succeeded.
        let s = unsafe { s.assume_init() };
        // Free counts move with other tests; the geometry does not.
        Ok(format!(
            "bsize={} frsize={} blocks={} files={} namemax={}",
            s.f_bsize, s.f_frsize, s.f_blocks, s.f_files, s.f_namemax
        ))
    });
}

// ---------------------------------------------------------------------------------------------
// special files

#[test]
fn mknod_fifo_and_unix_socket() {
    require_fuse!();
    Twin::new().check("special", |d| {
        let fifo = d.join("fifo");
        cvt(unsafe { libc::mkfifo(c(&fifo).as_ptr(), 0o640) })?;
        let again = res(cvt(unsafe { libc::mkfifo(c(&fifo).as_ptr(), 0o640) }));
        // A reader and a writer meet in the pipe.
        let reader = open(&fifo, libc::O_RDONLY | libc::O_NONBLOCK, 0)?;
        let mut writer = open(&fifo, libc::O_WRONLY | libc::O_NONBLOCK, 0)?;
        writer.write_all(b"through the pipe")?;
        drop(writer);
        let mut got = String::new();
        (&reader).read_to_string(&mut got)?;
        let reg = d.join("reg");
        cvt(unsafe { libc::mknod(c(&reg).as_ptr(), libc::S_IFREG | 0o600, 0) })?;
        let sock = d.join("sock");
        let listener = std::os::unix::net::UnixListener::bind(&sock)?;
        let rebind = res(std::os::unix::net::UnixListener::bind(&sock).map(drop));
        let mut client = std::os::unix::net::UnixStream::connect(&sock)?;
        client.write_all(b"ping")?;
        drop(client);
        let (mut server, _) = listener.accept()?;
        let mut msg = String::new();
        server.read_to_string(&mut msg)?;
        Ok(format!(
            "{} {again} {got:?} {} {} {rebind} {msg:?} unlink={}",
            meta(&fifo)?,
            meta(&reg)?,
            meta(&sock)?,
            res(std::fs::remove_file(&sock)),
        ))
    });
}

// ---------------------------------------------------------------------------------------------
// extended attributes

fn setx(p: &Path, name: &str, value: &[u8], flags: i32) -> io::Result<()> {
    cvt(unsafe {
        libc::lsetxattr(
            c(p).as_ptr(),
            cname(name).as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            flags,
        )
    })
    .map(drop)
}

fn getx(p: &Path, name: &str, size: usize) -> io::Result<String> {
    let mut buf = vec![0u8; size];
    let n = cvt_size(unsafe {
        libc::lgetxattr(
            c(p).as_ptr(),
            cname(name).as_ptr(),
            buf.as_mut_ptr().cast(),
            size,
        )
    })?;
    if size == 0 {
        return Ok(format!("size {n}"));
    }
    buf.truncate(n);
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

fn listx(p: &Path) -> io::Result<String> {
    let n = cvt_size(unsafe { libc::llistxattr(c(p).as_ptr(), std::ptr::null_mut(), 0) })?;
    let mut buf = vec![0u8; n];
    let m = cvt_size(unsafe { libc::llistxattr(c(p).as_ptr(), buf.as_mut_ptr().cast(), n) })?;
    buf.truncate(m);
    let mut names: Vec<String> = buf
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect();
    names.sort();
    Ok(format!("size {n}: {}", names.join(",")))
}

fn removex(p: &Path, name: &str) -> io::Result<()> {
    cvt(unsafe { libc::lremovexattr(c(p).as_ptr(), cname(name).as_ptr()) }).map(drop)
}

#[test]
fn xattrs_set_get_list_remove() {
    require_fuse!();
    Twin::new().check("xattr", |d| {
        let f = d.join("f");
        std::fs::write(&f, "x")?;
        std::fs::create_dir(d.join("sub"))?;
        std::os::unix::fs::symlink("f", d.join("l"))?;
        let mut steps = vec![listx(&f)?];
        setx(&f, "user.a", b"1", 0)?;
        setx(&f, "user.big", &[b'v'; 3000], 0)?;
        steps.push(getx(&f, "user.a", 64)?);
        steps.push(getx(&f, "user.big", 0)?);
        steps.push(res(getx(&f, "user.big", 10)));
        steps.push(listx(&f)?);
        steps.push(res(getx(&f, "user.missing", 64)));
        steps.push(res(setx(&f, "user.a", b"2", libc::XATTR_CREATE)));
        steps.push(res(setx(&f, "user.missing", b"2", libc::XATTR_REPLACE)));
        steps.push(res(setx(&f, "user.a", b"22", libc::XATTR_REPLACE)));
        steps.push(getx(&f, "user.a", 64)?);
        steps.push(res(removex(&f, "user.missing")));
        steps.push(res(removex(&f, "user.a")));
        steps.push(listx(&f)?);
        steps.push(res(setx(&d.join("sub"), "user.d", b"dir", 0)));
        steps.push(listx(&d.join("sub"))?);
        // user.* is not allowed on symlinks.
        steps.push(res(setx(&d.join("l"), "user.l", b"x", 0)));
        steps.push(res(getx(&d.join("l"), "user.l", 64)));
        steps.push(res(setx(&f, "trusted.t", b"root only", 0)));
        steps.push(res(getx(&f, "trusted.t", 64)));
        steps.push(res(getx(&d.join("nope"), "user.a", 64)));
        steps.push(res(setx(&f, "bogus.ns", b"x", 0)));
        Ok(steps.join(" | "))
    });
}

// ---------------------------------------------------------------------------------------------
// file data

#[test]
fn fallocate_modes() {
    require_fuse!();
    each_tuning(|t| {
        t.check("fallocate", |d| {
            let p = d.join("f");
            let f = new_rw(&p)?;
            f.write_all_at(&[1u8; 65536], 0)?;
            let falloc = |mode: i32, off: i64, len: i64| {
                res(cvt(unsafe {
                    libc::fallocate(f.as_raw_fd(), mode, off, len)
                }))
            };
            let mut steps = Vec::new();
            steps.push(falloc(0, 0, 131_072));
            steps.push(format!("size={}", f.metadata()?.len()));
            steps.push(falloc(libc::FALLOC_FL_KEEP_SIZE, 131_072, 65536));
            steps.push(format!("size={}", f.metadata()?.len()));
            steps.push(falloc(
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                4096,
                8192,
            ));
            let mut buf = vec![0u8; 16384];
            f.read_exact_at(&mut buf, 0)?;
            let zeros: Vec<usize> = buf
                .chunks(4096)
                .map(|c| c.iter().filter(|b| **b == 0).count())
                .collect();
            steps.push(format!(
                "zeros per 4k {zeros:?} size={}",
                f.metadata()?.len()
            ));
            steps.push(falloc(libc::FALLOC_FL_PUNCH_HOLE, 0, 4096));
            steps.push(format!("size={}", std::fs::metadata(&p)?.len()));
            steps.push(falloc(0, -1, 10));
            steps.push(falloc(0, 0, 0));
            let ro = File::open(&p)?;
            steps.push(res(cvt(unsafe {
                libc::fallocate(ro.as_raw_fd(), 0, 0, 4096)
            })));
            Ok(steps.join(" | "))
        })
    });
}

#[test]
fn lseek_data_and_hole_on_a_sparse_file() {
    require_fuse!();
    each_tuning(|t| {
        t.check("sparse", |d| {
            const MIB: i64 = 1 << 20;
            let p = d.join("sparse");
            let f = new_rw(&p)?;
            f.write_all_at(&[7u8; 4096], 0)?;
            f.write_all_at(&[9u8; 4096], MIB as u64)?;
            f.set_len(2 * MIB as u64)?;
            f.sync_all()?;
            let seek = |off: i64, whence: i32| {
                res(cvt_off(unsafe { libc::lseek(f.as_raw_fd(), off, whence) }))
            };
            let (data, hole) = (libc::SEEK_DATA, libc::SEEK_HOLE);
            Ok([
                seek(0, data),
                seek(0, hole),
                seek(4096, data),
                seek(MIB, hole),
                seek(MIB + 4096, data),
                seek(MIB + 4096, hole),
                seek(2 * MIB - 1, hole),
                seek(2 * MIB, data),
                seek(2 * MIB, hole),
                seek(-1, data),
                seek(0, libc::SEEK_END),
                seek(0, 42),
            ]
            .join(" "))
        })
    });
}

#[test]
fn copy_file_range_between_two_files() {
    require_fuse!();
    each_tuning(|t| {
        t.check("copy_range", |d| {
            let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
            std::fs::write(d.join("src"), &data)?;
            std::fs::write(d.join("dst"), "0123456789")?;
            let src = File::open(d.join("src"))?;
            let dst = OpenOptions::new()
                .read(true)
                .write(true)
                .open(d.join("dst"))?;
            let cfr = |off_in: Option<i64>, off_out: Option<i64>, len: usize, flags: u32| {
                let mut oi = off_in.unwrap_or(0);
                let mut oo = off_out.unwrap_or(0);
                let pi: *mut i64 = if off_in.is_some() {
                    &mut oi
                } else {
                    std::ptr::null_mut()
                };
                let po: *mut i64 = if off_out.is_some() {
                    &mut oo
                } else {
                    std::ptr::null_mut()
                };
                let r = cvt_size(unsafe {
                    libc::copy_file_range(src.as_raw_fd(), pi, dst.as_raw_fd(), po, len, flags)
                });
                format!("{} in={oi} out={oo}", res(r))
            };
            let mut steps = vec![cfr(Some(10), Some(5), 1000, 0)];
            steps.push(cfr(Some(200_000), Some(0), 10, 0));
            steps.push(cfr(Some(0), Some(0), 10, 1));
            steps.push(cfr(Some(99_990), Some(2000), 100, 0));
            (&src).seek(SeekFrom::Start(50))?;
            (&dst).seek(SeekFrom::End(0))?;
            steps.push(cfr(None, None, 200, 0));
            steps.push(format!(
                "src_pos={} dst_pos={}",
                (&src).stream_position()?,
                (&dst).stream_position()?
            ));
            let out = std::fs::read(d.join("dst"))?;
            let sum: u64 = out
                .iter()
                .enumerate()
                .map(|(i, b)| (i as u64 + 1) * u64::from(*b))
                .sum();
            steps.push(format!("len={} sum={sum} head={:?}", out.len(), &out[..12]));
            let ro = File::open(d.join("dst"))?;
            steps.push(res(cvt_size(unsafe {
                libc::copy_file_range(
                    src.as_raw_fd(),
                    std::ptr::null_mut(),
                    ro.as_raw_fd(),
                    std::ptr::null_mut(),
                    10,
                    0,
                )
            })));
            Ok(steps.join(" | "))
        })
    });
}

#[test]
fn fsync_and_fdatasync() {
    require_fuse!();
    Twin::new().check("fsync", |d| {
        let mut f = File::create(d.join("f"))?;
        f.write_all(b"durable")?;
        let ro = File::open(d.join("f"))?;
        let dir = File::open(d)?;
        Ok(format!(
            "{} {} {} {} {}",
            res(f.sync_all()),
            res(f.sync_data()),
            res(ro.sync_all()),
            res(dir.sync_all()),
            res(dir.sync_data())
        ))
    });
}

// ---------------------------------------------------------------------------------------------
// listings

fn listing(d: &Path) -> io::Result<String> {
    use std::hash::{Hash, Hasher};
    let mut names = Vec::new();
    for e in std::fs::read_dir(d)? {
        let e = e?;
        let t = e.file_type()?;
        let k = if t.is_dir() {
            'd'
        } else if t.is_symlink() {
            'l'
        } else {
            'f'
        };
        names.push(format!("{k} {}", e.file_name().to_string_lossy()));
    }
    let count = names.len();
    names.sort();
    let unique = {
        let mut u = names.clone();
        u.dedup();
        u.len()
    };
    let mut h = std::collections::hash_map::DefaultHasher::new();
    names.hash(&mut h);
    Ok(format!(
        "count={count} unique={unique} hash={:x}",
        h.finish()
    ))
}

#[test]
fn readdir_of_3000_entries() {
    require_fuse!();
    Twin::new().check("many", |d| {
        for i in 0..3000 {
            // Names of many lengths, so readdirplus pages break at different places.
            let name = format!("entry-{i:05}-{}", "x".repeat(i % 61));
            match i % 10 {
                0 => std::fs::create_dir(d.join(&name))?,
                1 => std::os::unix::fs::symlink("target", d.join(&name))?,
                _ => std::fs::write(d.join(&name), "")?,
            }
        }
        let first = listing(d)?;
        let second = listing(d)?;
        // Remove everything while listing, as `rm -r` does.
        let mut removed = 0;
        for e in std::fs::read_dir(d)? {
            let e = e?;
            if e.file_type()?.is_dir() {
                std::fs::remove_dir(e.path())?;
            } else {
                std::fs::remove_file(e.path())?;
            }
            removed += 1;
        }
        Ok(format!(
            "{first} {second} removed={removed} left={}",
            listing(d)?
        ))
    });
}

#[test]
fn mode_of_new_objects_follows_the_umask() {
    require_fuse!();
    Twin::new().check("modes", |d| {
        std::fs::create_dir(d.join("sub"))?;
        std::fs::DirBuilder::new()
            .mode(0o777)
            .create(d.join("wide"))?;
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o666)
            .open(d.join("f"))?;
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o4755)
            .open(d.join("suid"))?;
        Ok(format!(
            "{} {} {} {}",
            meta(&d.join("sub"))?,
            meta(&d.join("wide"))?,
            meta(&d.join("f"))?,
            meta(&d.join("suid"))?
        ))
    });
}

#[test]
fn paths_and_metadata_match_name_for_name() {
    require_fuse!();
    Twin::new().check("stat", |d| {
        std::fs::write(d.join("f"), "12345")?;
        std::os::unix::fs::symlink("f", d.join("l"))?;
        std::os::unix::fs::symlink("nowhere", d.join("dangling"))?;
        let name = OsStr::from_bytes(b"non-utf8-\xff\xfe");
        std::fs::write(d.join(name), "raw")?;
        Ok(format!(
            "{} {} {} follow={} {} {:?} trailing_slash={}",
            meta(&d.join("f"))?,
            meta(&d.join("l"))?,
            meta(&d.join("dangling"))?,
            res(std::fs::metadata(d.join("dangling")).map(drop)),
            meta(&d.join(name))?,
            std::fs::read(d.join(name))?,
            res(std::fs::metadata(d.join("f/")).map(drop)),
        ))
    });
}

/// A buffer aligned for O_DIRECT.
struct Aligned {
    ptr: *mut u8,
    layout: std::alloc::Layout,
}

impl Aligned {
    fn new(len: usize, fill: u8) -> Aligned {
        let layout = std::alloc::Layout::from_size_align(len, 4096).expect("layout");
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { std::alloc::alloc(layout) };
        assert!(!ptr.is_null(), "allocation failed");
        // SAFETY: ptr is valid for len bytes.
        unsafe { std::ptr::write_bytes(ptr, fill, len) };
        Aligned { ptr, layout }
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: ptr is valid and initialized for layout.size() bytes.
        unsafe { std::slice::from_raw_parts(self.ptr, self.layout.size()) }
    }
}

impl Drop for Aligned {
    fn drop(&mut self) {
        // SAFETY: allocated with this layout.
        unsafe { std::alloc::dealloc(self.ptr, self.layout) };
    }
}

#[test]
fn readdir_inode_numbers_match_stat() {
    require_fuse!();
    Twin::new().check("d_ino", |d| {
        std::fs::create_dir(d.join("sub"))?;
        std::fs::write(d.join("f"), "x")?;
        std::fs::hard_link(d.join("f"), d.join("f2"))?;
        std::os::unix::fs::symlink("f", d.join("l"))?;
        let mut mismatched = Vec::new();
        for e in std::fs::read_dir(d)? {
            let e = e?;
            use std::os::unix::fs::DirEntryExt;
            if e.ino() != std::fs::symlink_metadata(e.path())?.ino() {
                mismatched.push(e.file_name().to_string_lossy().into_owned());
            }
        }
        mismatched.sort();
        let same = std::fs::metadata(d.join("f"))?.ino() == std::fs::metadata(d.join("f2"))?.ino();
        Ok(format!("mismatched={mismatched:?} hard_links_share={same}"))
    });
}

#[test]
fn renaming_a_directory_keeps_open_files_and_children_reachable() {
    require_fuse!();
    Twin::new().check("rename_dir_open", |d| {
        std::fs::create_dir_all(d.join("old/deep"))?;
        std::fs::write(d.join("old/deep/f"), "data")?;
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(d.join("old/deep/f"))?;
        std::fs::rename(d.join("old"), d.join("new"))?;
        f.write_all(b"+more")?;
        std::fs::set_permissions(d.join("new/deep/f"), std::fs::Permissions::from_mode(0o604))?;
        cvt(unsafe { libc::fchmod(f.as_raw_fd(), 0o640) })?;
        let m = f.metadata()?;
        std::fs::rename(d.join("new/deep"), d.join("moved"))?;
        Ok(format!(
            "old={} new={} moved={} content={} fstat={:o}/{}",
            res(std::fs::metadata(d.join("old/deep/f")).map(drop)),
            res(std::fs::metadata(d.join("new/deep/f")).map(drop)),
            meta(&d.join("moved/f"))?,
            read(&d.join("moved/f"))?,
            m.mode() & 0o7777,
            m.len()
        ))
    });
}

#[test]
fn setgid_directory_passes_its_group_on() {
    require_fuse!();
    Twin::new().check("setgid", |d| {
        let g = d.join("group");
        std::fs::create_dir(&g)?;
        std::os::unix::fs::chown(&g, None, Some(1234))?;
        std::fs::set_permissions(&g, std::fs::Permissions::from_mode(0o2775))?;
        std::fs::create_dir(g.join("sub"))?;
        std::fs::write(g.join("f"), "x")?;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(g.join("private"))?;
        Ok(format!(
            "{} {} {} {}",
            meta(&g)?,
            meta(&g.join("sub"))?,
            meta(&g.join("f"))?,
            meta(&g.join("private"))?
        ))
    });
}

#[test]
fn parent_directory_link_count_and_times_follow_changes() {
    require_fuse!();
    Twin::new().check("parent", |d| {
        let p = d.join("p");
        std::fs::create_dir(&p)?;
        utimensat(&p, ts(1_000_000_000, 0), ts(1_000_000_000, 0), 0)?;
        let mut steps = vec![meta(&p)?];
        let changed =
            |p: &Path| -> io::Result<bool> { Ok(std::fs::metadata(p)?.mtime() != 1_000_000_000) };
        std::fs::create_dir(p.join("a"))?;
        std::fs::create_dir(p.join("b"))?;
        steps.push(format!("{} changed={}", meta(&p)?, changed(&p)?));
        utimensat(&p, ts(1_000_000_000, 0), ts(1_000_000_000, 0), 0)?;
        std::fs::remove_dir(p.join("a"))?;
        steps.push(format!("{} changed={}", meta(&p)?, changed(&p)?));
        utimensat(&p, ts(1_000_000_000, 0), ts(1_000_000_000, 0), 0)?;
        std::fs::write(p.join("f"), "x")?;
        steps.push(format!("{} changed={}", meta(&p)?, changed(&p)?));
        utimensat(&p, ts(1_000_000_000, 0), ts(1_000_000_000, 0), 0)?;
        std::fs::rename(p.join("f"), p.join("g"))?;
        steps.push(format!("{} changed={}", meta(&p)?, changed(&p)?));
        utimensat(&p, ts(1_000_000_000, 0), ts(1_000_000_000, 0), 0)?;
        std::fs::remove_file(p.join("g"))?;
        steps.push(format!("{} changed={}", meta(&p)?, changed(&p)?));
        Ok(steps.join(" | "))
    });
}

// ---------------------------------------------------------------------------------------------
// Regressions

/// Waits until the daemon has seen every release (the kernel sends them after close returns).
fn until_all_released(m: &Mount) {
    tests::poll::wait_until(
        std::time::Duration::from_secs(10),
        "the daemon to see every release",
        || m.overlay().handle_count() == 0,
    );
}

/// With passthrough I/O, a read-only open gave its inode a backing marked read-only; a second
/// open for writing while it was open was answered without passthrough, which the kernel refuses
/// for an inode in passthrough mode: EIO.
#[test]
fn passthrough_open_for_writing_while_open_read_only_is_not_eio() {
    require_fuse!();
    let t = Twin::new();
    for (label, dir) in t.roots("rw_after_ro") {
        std::fs::create_dir(&dir).expect("mkdir");
        let p = dir.join("f");
        std::fs::write(&p, "abc").expect("create");
        until_all_released(&t.m);
        let r = File::open(&p).expect("open read-only");
        let w = OpenOptions::new().read(true).write(true).open(&p);
        assert_eq!(
            errno(&w),
            None,
            "{label}: open for writing while open read-only"
        );
        w.expect("checked").write_all_at(b"X", 0).expect("write");
        let mut buf = [0u8; 3];
        r.read_exact_at(&mut buf, 0).expect("read");
        assert_eq!(&buf, b"Xbc", "{label}");
        // And the other way round: write-only first, then a reader shares its backing.
        drop(r);
        until_all_released(&t.m);
        let w = OpenOptions::new()
            .write(true)
            .open(&p)
            .expect("open write-only");
        let r = File::open(&p).expect("open read-only while open write-only");
        w.write_all_at(b"Y", 1).expect("write");
        r.read_exact_at(&mut buf, 0)
            .expect("read through a shared write-only backing");
        assert_eq!(&buf, b"XYc", "{label}");
    }
}

/// fuser 0.18 decodes a setattr time before the epoch with nanoseconds as -(|sec| + nsec) instead
/// of sec + nsec: -1.5 s was stored as -2.5 s.
#[test]
fn utimensat_before_the_epoch_with_nanoseconds_keeps_the_time() {
    require_fuse!();
    Twin::new().check("pre_epoch", |d| {
        let p = d.join("f");
        std::fs::write(&p, "x")?;
        let mut steps = Vec::new();
        for (s, ns) in [
            (-2, 500_000_000),
            (-1, 999_999_999),
            (-1, 1),
            (-1_000_000_000, 123),
            (-5, 0),
        ] {
            utimensat(&p, ts(s, ns), ts(s, ns), 0)?;
            let m = std::fs::metadata(&p)?;
            steps.push(format!(
                "{s}+{ns}: {} {} {} {}",
                m.atime(),
                m.atime_nsec(),
                m.mtime(),
                m.mtime_nsec()
            ));
        }
        assert!(steps[0].ends_with("-2 500000000 -2 500000000"), "{steps:?}");
        Ok(steps.join(" | "))
    });
}

/// `user.redirfs.target` answers by name but is not listed: listing it made `cp -a` and
/// `rsync -X` copy a stale location onto every copy taken out of the mount.
#[test]
fn listxattr_does_not_list_user_redirfs_target() {
    require_fuse!();
    let t = Twin::new();
    t.check("xattr_list", |d| {
        std::fs::write(d.join("f"), "x")?;
        std::fs::create_dir(d.join("sub"))?;
        Ok(format!(
            "{} {}",
            listx(&d.join("f"))?,
            listx(&d.join("sub"))?
        ))
    });
    let got = getx(&t.m.at("t/xattr_list/f"), "user.redirfs.target", 4096)
        .expect("still answers by name");
    assert_eq!(got, t.m.real("vol/xattr_list/f").to_string_lossy());
    assert_eq!(listx(&t.m.at("t")).expect("list the entry"), "size 0: ");
    assert_eq!(listx(&t.m.at("")).expect("list the root"), "size 0: ");
}

/// An open file unlinked through the mount lost its last name in the overlay, so fstat, fchmod,
/// fchown, futimens and ftruncate on it answered ENOENT; they now go to the open descriptor.
#[test]
fn fstat_fchmod_ftruncate_after_unlink_are_not_enoent() {
    require_fuse!();
    each_tuning(|t| {
        t.check("unlinked_open", |d| {
            let p = d.join("f");
            let mut f = new_rw(&p)?;
            f.write_all(b"before")?;
            std::fs::remove_file(&p)?;
            let mut steps = vec![res(std::fs::metadata(&p).map(drop))];
            let m = f.metadata();
            steps.push(res(m.map(|m| (m.len(), m.nlink()))));
            f.write_all(b" after")?;
            steps.push(res(f.set_len(9)));
            steps.push(res(cvt(unsafe { libc::fchmod(f.as_raw_fd(), 0o600) })));
            steps.push(res(cvt(unsafe { libc::fchown(f.as_raw_fd(), 1234, 1234) })));
            let fts = [ts(1_000_000_000, 5), ts(1_000_000_001, 6)];
            steps.push(res(cvt(unsafe {
                libc::futimens(f.as_raw_fd(), fts.as_ptr())
            })));
            steps.push(res(f.sync_all()));
            let mut buf = Vec::new();
            f.seek(SeekFrom::Start(0))?;
            f.read_to_end(&mut buf)?;
            steps.push(String::from_utf8_lossy(&buf).into_owned());
            let m = f.metadata();
            steps.push(res(m.map(|m| {
                format!(
                    "size={} nlink={} mode={:o} {}:{} mtime={}.{}",
                    m.len(),
                    m.nlink(),
                    m.mode() & 0o7777,
                    m.uid(),
                    m.gid(),
                    m.mtime(),
                    m.mtime_nsec()
                )
            })));
            Ok(steps.join(" | "))
        })
    });
}

/// xattr calls on an open file whose last name was unlinked through the mount answered ENOENT;
/// they now go to the open descriptor, as on a local disk.
#[test]
fn fd_xattrs_after_unlink_are_not_enoent() {
    require_fuse!();
    each_tuning(|t| {
        t.check("unlinked_xattr", |d| {
            let p = d.join("f");
            let f = new_rw(&p)?;
            let fd = f.as_raw_fd();
            let set = |name: &str, v: &[u8]| {
                res(cvt(unsafe {
                    libc::fsetxattr(fd, cname(name).as_ptr(), v.as_ptr().cast(), v.len(), 0)
                }))
            };
            let get = |name: &str| {
                let mut buf = vec![0u8; 64];
                res(cvt_size(unsafe {
                    libc::fgetxattr(fd, cname(name).as_ptr(), buf.as_mut_ptr().cast(), 64)
                })
                .map(|n| String::from_utf8_lossy(&buf[..n]).into_owned()))
            };
            let list = || {
                let mut buf = vec![0u8; 256];
                res(
                    cvt_size(unsafe { libc::flistxattr(fd, buf.as_mut_ptr().cast(), 256) })
                        .map(|n| String::from_utf8_lossy(&buf[..n]).replace('\0', ",")),
                )
            };
            let mut steps = vec![set("user.before", b"1")];
            std::fs::remove_file(&p)?;
            steps.push(get("user.before"));
            steps.push(set("user.after", b"2"));
            steps.push(get("user.after"));
            steps.push(list());
            steps.push(res(cvt(unsafe {
                libc::fremovexattr(fd, cname("user.before").as_ptr())
            })));
            steps.push(list());
            steps.push(get("user.missing"));
            Ok(steps.join(" | "))
        })
    });
}

/// The daemon opened the real file with the caller's O_DIRECT, then served the kernel's reads and
/// writes from unaligned buffers: EINVAL without passthrough.
#[test]
fn o_direct_io_without_passthrough_is_not_einval() {
    require_fuse!();
    each_tuning(|t| {
        t.check("o_direct", |d| {
            let p = d.join("f");
            std::fs::write(&p, vec![b'a'; 16384])?;
            let f = open(&p, libc::O_RDWR | libc::O_DIRECT, 0)?;
            let out = Aligned::new(8192, b'z');
            let w = cvt_size(unsafe { libc::pwrite(f.as_raw_fd(), out.ptr.cast(), 8192, 4096) });
            let back = Aligned::new(16384, 0);
            let r = cvt_size(unsafe { libc::pread(f.as_raw_fd(), back.ptr.cast(), 16384, 0) });
            let z = back.bytes().iter().filter(|b| **b == b'z').count();
            drop(f);
            let content = std::fs::read(&p)?;
            Ok(format!(
                "write={} read={} z={z} file_z={} len={}",
                res(w),
                res(r),
                content.iter().filter(|b| **b == b'z').count(),
                content.len()
            ))
        })
    });
}
