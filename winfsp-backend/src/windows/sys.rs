//! Every Windows system call the backend makes, as safe functions over handles.
//!
//! Real objects are opened relative to a root handle (the base or a transparent entry's target)
//! with `NtCreateFile`, so a path is never re-resolved from the drive letter down and the
//! lower file system's own `NTSTATUS` comes back unchanged. Win32 failures become an `NTSTATUS`
//! through [`crate::status`].

use std::ffi::c_void;
use std::mem::size_of;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::path::Path;

use windows::core::{HSTRING, PCWSTR, PWSTR};
use windows::Wdk::Foundation::OBJECT_ATTRIBUTES;
use windows::Wdk::Storage::FileSystem::{
    NtCreateFile, NTCREATEFILE_CREATE_DISPOSITION, NTCREATEFILE_CREATE_OPTIONS,
};
use windows::Win32::Foundation::{
    LocalFree, HANDLE, HLOCAL, OBJECT_ATTRIBUTE_FLAGS, UNICODE_STRING,
};
use windows::Win32::Security::Authorization::{
    ConvertStringSecurityDescriptorToSecurityDescriptorW, SDDL_REVISION_1,
};
use windows::Win32::Security::{
    GetKernelObjectSecurity, GetSecurityDescriptorLength, SetKernelObjectSecurity,
    DACL_SECURITY_INFORMATION, GROUP_SECURITY_INFORMATION, OBJECT_SECURITY_INFORMATION,
    OWNER_SECURITY_INFORMATION, PSECURITY_DESCRIPTOR, SECURITY_DESCRIPTOR,
};
use windows::Win32::Storage::FileSystem::{
    CreateFileW, FileAllocationInfo, FileAttributeTagInfo, FileBasicInfo, FileDispositionInfo,
    FileEndOfFileInfo, FileIdBothDirectoryInfo, FileIdBothDirectoryRestartInfo, FileRenameInfo,
    FileStandardInfo, FlushFileBuffers, GetDiskFreeSpaceExW, GetFileInformationByHandle,
    GetFileInformationByHandleEx, ReadFile, SetFileInformationByHandle, WriteFile,
    BY_HANDLE_FILE_INFORMATION, FILE_ACCESS_RIGHTS, FILE_ALLOCATION_INFO, FILE_ATTRIBUTE_TAG_INFO,
    FILE_BASIC_INFO, FILE_DISPOSITION_INFO, FILE_END_OF_FILE_INFO, FILE_FLAGS_AND_ATTRIBUTES,
    FILE_FLAG_BACKUP_SEMANTICS, FILE_ID_BOTH_DIR_INFO, FILE_INFO_BY_HANDLE_CLASS,
    FILE_READ_ATTRIBUTES, FILE_RENAME_INFO, FILE_SHARE_DELETE, FILE_SHARE_READ, FILE_SHARE_WRITE,
    FILE_STANDARD_INFO, OPEN_EXISTING,
};
use windows::Win32::System::Console::{SetConsoleCtrlHandler, PHANDLER_ROUTINE};
use windows::Win32::System::Ioctl::{
    FSCTL_DELETE_REPARSE_POINT, FSCTL_GET_REPARSE_POINT, FSCTL_SET_REPARSE_POINT,
};
use windows::Win32::System::IO::{DeviceIoControl, IO_STATUS_BLOCK, OVERLAPPED};

use crate::attr::{Info, FILE_ATTRIBUTE_REPARSE_POINT};
use crate::status::{hresult_status, NtStatus, STATUS_BUFFER_TOO_SMALL, STATUS_INVALID_PARAMETER};

/// A result whose error is already an `NTSTATUS`.
pub type SysResult<T> = Result<T, NtStatus>;

/// `ERROR_NO_MORE_FILES` as an HRESULT: the end of a directory.
const HRESULT_NO_MORE_FILES: i32 = 0x8007_0012u32 as i32;

fn status(e: &windows::core::Error) -> NtStatus {
    hresult_status(e.code().0)
}

fn raw(h: &OwnedHandle) -> HANDLE {
    HANDLE(h.as_raw_handle())
}

/// Opens a directory to serve as a root for relative opens.
///
/// # Errors
/// The status `CreateFileW` failed with.
pub fn open_root(path: &Path) -> SysResult<OwnedHandle> {
    let name = HSTRING::from(path.as_os_str());
    // SAFETY: `name` outlives the call; the returned handle is owned by nobody else.
    let h = unsafe {
        CreateFileW(
            &name,
            FILE_READ_ATTRIBUTES.0,
            FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
            None,
            OPEN_EXISTING,
            FILE_FLAG_BACKUP_SEMANTICS,
            None,
        )
    }
    .map_err(|e| status(&e))?;
    // SAFETY: CreateFileW succeeded, so `h` is a valid handle that we alone own.
    Ok(unsafe { OwnedHandle::from_raw_handle(h.0) })
}

/// What [`nt_create`] is asked to do.
#[derive(Debug)]
pub struct CreateRequest<'a> {
    /// Access rights (`FILE_*`, `DELETE`, `MAXIMUM_ALLOWED`...).
    pub access: u32,
    /// `FILE_OPEN`, `FILE_CREATE`...
    pub disposition: u32,
    /// `FILE_DIRECTORY_FILE`, `FILE_OPEN_REPARSE_POINT`...
    pub options: u32,
    /// `FILE_ATTRIBUTE_*` for a new file.
    pub attributes: u32,
    /// The new file's security descriptor (self-relative), if any.
    pub security: Option<&'a [c_void]>,
    /// The initial allocation, 0 for none.
    pub allocation: u64,
    /// Extended attributes for a new file.
    pub ea: Option<&'a [u8]>,
}

/// Opens or creates `rel` (backslashed, no leading `\`; empty for the root itself) relative to
/// `root`, sharing read, write and delete: WinFsp enforces the callers' share modes itself.
///
/// # Errors
/// The status `NtCreateFile` returned.
pub fn nt_create(root: &OwnedHandle, rel: &str, req: &CreateRequest<'_>) -> SysResult<OwnedHandle> {
    let mut name: Vec<u16> = rel.encode_utf16().collect();
    let bytes = u16::try_from(name.len() * 2).map_err(|_| STATUS_INVALID_PARAMETER)?;
    let unicode = UNICODE_STRING {
        Length: bytes,
        MaximumLength: bytes,
        Buffer: PWSTR(name.as_mut_ptr()),
    };
    let attrs = OBJECT_ATTRIBUTES {
        Length: size_of::<OBJECT_ATTRIBUTES>() as u32,
        RootDirectory: raw(root),
        ObjectName: &unicode,
        // Case-insensitive like Win32 opens: the overlay is case-insensitive.
        Attributes: OBJECT_ATTRIBUTE_FLAGS(0x40),
        SecurityDescriptor: req.security.map_or(std::ptr::null(), |s| {
            s.as_ptr().cast::<SECURITY_DESCRIPTOR>()
        }),
        SecurityQualityOfService: std::ptr::null(),
    };
    let allocation = i64::try_from(req.allocation).unwrap_or(i64::MAX);
    let mut handle = HANDLE::default();
    let mut iosb = IO_STATUS_BLOCK::default();
    // SAFETY: every pointer refers to a live local (`name` backs `unicode`, which backs `attrs`)
    // or to the caller's slices, all of which outlive the call.
    let st = unsafe {
        NtCreateFile(
            &mut handle,
            FILE_ACCESS_RIGHTS(req.access | FILE_READ_ATTRIBUTES.0),
            &attrs,
            &mut iosb,
            (req.allocation != 0).then_some(&allocation as *const i64),
            FILE_FLAGS_AND_ATTRIBUTES(req.attributes),
            FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
            NTCREATEFILE_CREATE_DISPOSITION(req.disposition),
            NTCREATEFILE_CREATE_OPTIONS(req.options),
            req.ea.map(|e| e.as_ptr().cast::<c_void>()),
            req.ea.map_or(0, |e| e.len() as u32),
        )
    };
    if st.is_err() {
        return Err(NtStatus(st.0));
    }
    // SAFETY: NtCreateFile succeeded, so `handle` is valid and ours alone.
    Ok(unsafe { OwnedHandle::from_raw_handle(handle.0) })
}

fn get_info<T: Default>(h: &OwnedHandle, class: FILE_INFO_BY_HANDLE_CLASS) -> SysResult<T> {
    let mut out = T::default();
    // SAFETY: `out` is a properly sized and aligned buffer for `class`, as the callers pair them.
    unsafe {
        GetFileInformationByHandleEx(
            raw(h),
            class,
            (&mut out as *mut T).cast::<c_void>(),
            size_of::<T>() as u32,
        )
    }
    .map_err(|e| status(&e))?;
    Ok(out)
}

fn set_info<T>(h: &OwnedHandle, class: FILE_INFO_BY_HANDLE_CLASS, value: &T) -> SysResult<()> {
    // SAFETY: `value` is the structure `class` expects, as the callers pair them.
    unsafe {
        SetFileInformationByHandle(
            raw(h),
            class,
            (value as *const T).cast::<c_void>(),
            size_of::<T>() as u32,
        )
    }
    .map_err(|e| status(&e))
}

/// Attributes, sizes, times and the file index of an open object.
///
/// # Errors
/// The status of the failed query.
pub fn query_info(h: &OwnedHandle) -> SysResult<Info> {
    let basic: FILE_BASIC_INFO = get_info(h, FileBasicInfo)?;
    let standard: FILE_STANDARD_INFO = get_info(h, FileStandardInfo)?;
    let mut by_handle = BY_HANDLE_FILE_INFORMATION::default();
    // SAFETY: `by_handle` is a valid out-pointer for the call.
    unsafe { GetFileInformationByHandle(raw(h), &mut by_handle) }.map_err(|e| status(&e))?;
    let reparse_tag = if basic.FileAttributes & FILE_ATTRIBUTE_REPARSE_POINT != 0 {
        let tag: FILE_ATTRIBUTE_TAG_INFO = get_info(h, FileAttributeTagInfo)?;
        tag.ReparseTag
    } else {
        0
    };
    Ok(Info {
        attributes: basic.FileAttributes,
        reparse_tag,
        allocation_size: standard.AllocationSize.max(0) as u64,
        file_size: standard.EndOfFile.max(0) as u64,
        creation_time: basic.CreationTime as u64,
        last_access_time: basic.LastAccessTime as u64,
        last_write_time: basic.LastWriteTime as u64,
        change_time: basic.ChangeTime as u64,
        index_number: (u64::from(by_handle.nFileIndexHigh) << 32)
            | u64::from(by_handle.nFileIndexLow),
    })
}

/// The file size of an open file.
///
/// # Errors
/// The status of the failed query.
pub fn file_size(h: &OwnedHandle) -> SysResult<u64> {
    let standard: FILE_STANDARD_INFO = get_info(h, FileStandardInfo)?;
    Ok(standard.EndOfFile.max(0) as u64)
}

/// Sets attributes and times; 0 leaves a field as it is (see [`crate::attr::basic_info_attributes`]).
///
/// # Errors
/// The status of the failed call.
pub fn set_basic(h: &OwnedHandle, attributes: u32, times: [u64; 4]) -> SysResult<()> {
    let info = FILE_BASIC_INFO {
        CreationTime: times[0] as i64,
        LastAccessTime: times[1] as i64,
        LastWriteTime: times[2] as i64,
        ChangeTime: times[3] as i64,
        FileAttributes: attributes,
    };
    set_info(h, FileBasicInfo, &info)
}

/// Sets the end of file.
///
/// # Errors
/// The status of the failed call.
pub fn set_end_of_file(h: &OwnedHandle, size: u64) -> SysResult<()> {
    let info = FILE_END_OF_FILE_INFO {
        EndOfFile: i64::try_from(size).map_err(|_| STATUS_INVALID_PARAMETER)?,
    };
    set_info(h, FileEndOfFileInfo, &info)
}

/// Sets the allocation size.
///
/// # Errors
/// The status of the failed call.
pub fn set_allocation(h: &OwnedHandle, size: u64) -> SysResult<()> {
    let info = FILE_ALLOCATION_INFO {
        AllocationSize: i64::try_from(size).map_err(|_| STATUS_INVALID_PARAMETER)?,
    };
    set_info(h, FileAllocationInfo, &info)
}

/// Marks the object for deletion when its last handle closes, or clears the mark. The lower file
/// system checks what it checks (a non-empty directory, a read-only file).
///
/// # Errors
/// The status of the failed call.
pub fn set_delete(h: &OwnedHandle, delete: bool) -> SysResult<()> {
    set_info(
        h,
        FileDispositionInfo,
        &FILE_DISPOSITION_INFO { DeleteFile: delete },
    )
}

/// Renames the open object to `rel` beneath `root`.
///
/// # Errors
/// The status of the failed call.
pub fn rename(h: &OwnedHandle, root: &OwnedHandle, rel: &str, replace: bool) -> SysResult<()> {
    let name: Vec<u16> = rel.encode_utf16().collect();
    let name_offset = std::mem::offset_of!(FILE_RENAME_INFO, FileName);
    let len = name_offset + name.len() * 2 + 2;
    // u64 storage keeps FILE_RENAME_INFO's alignment.
    let mut buf = vec![0u64; len.div_ceil(8)];
    let info = buf.as_mut_ptr().cast::<FILE_RENAME_INFO>();
    // SAFETY: `buf` is zeroed, aligned and `len` bytes long: room for the header and the name
    // with its terminator. We write inside it only.
    unsafe {
        (*info).Anonymous.ReplaceIfExists = replace;
        (*info).RootDirectory = raw(root);
        (*info).FileNameLength = (name.len() * 2) as u32;
        let dst = info.cast::<u8>().add(name_offset).cast::<u16>();
        std::ptr::copy_nonoverlapping(name.as_ptr(), dst, name.len());
    }
    // SAFETY: `info` points to `len` valid bytes laid out as FILE_RENAME_INFO.
    unsafe { SetFileInformationByHandle(raw(h), FileRenameInfo, info.cast::<c_void>(), len as u32) }
        .map_err(|e| status(&e))
}

fn overlapped_at(offset: u64) -> OVERLAPPED {
    let mut o = OVERLAPPED::default();
    o.Anonymous.Anonymous.Offset = offset as u32;
    o.Anonymous.Anonymous.OffsetHigh = (offset >> 32) as u32;
    o
}

/// Reads at `offset`; `STATUS_END_OF_FILE` at or past the end.
///
/// # Errors
/// The status of the failed read.
pub fn read_at(h: &OwnedHandle, buf: &mut [u8], offset: u64) -> SysResult<u32> {
    let mut done = 0u32;
    let mut o = overlapped_at(offset);
    // SAFETY: the handle is synchronous, so the call completes before `o` and `done` go away.
    unsafe { ReadFile(raw(h), Some(buf), Some(&mut done), Some(&mut o)) }
        .map_err(|e| status(&e))?;
    Ok(done)
}

/// Writes at `offset`, or at the end of file when `offset` is `u64::MAX`.
///
/// # Errors
/// The status of the failed write.
pub fn write_at(h: &OwnedHandle, buf: &[u8], offset: u64) -> SysResult<u32> {
    let mut done = 0u32;
    // Offset 0xFFFFFFFF:0xFFFFFFFF means "append" to WriteFile.
    let mut o = overlapped_at(offset);
    // SAFETY: as in `read_at`.
    unsafe { WriteFile(raw(h), Some(buf), Some(&mut done), Some(&mut o)) }
        .map_err(|e| status(&e))?;
    Ok(done)
}

/// Flushes an open file.
///
/// # Errors
/// The status of the failed call.
pub fn flush(h: &OwnedHandle) -> SysResult<()> {
    // SAFETY: a valid handle.
    unsafe { FlushFileBuffers(raw(h)) }.map_err(|e| status(&e))
}

/// One directory entry: its name and what the directory says about it.
#[derive(Debug, Clone)]
pub struct DirEntry {
    /// The name, as stored.
    pub name: String,
    /// Attributes, sizes and times.
    pub info: Info,
}

/// Lists an open directory from the start, without `.` and `..`.
///
/// # Errors
/// The status of the failed call.
pub fn read_dir(h: &OwnedHandle) -> SysResult<Vec<DirEntry>> {
    let mut out = Vec::new();
    let mut buf = vec![0u64; 64 * 1024 / 8];
    let mut class = FileIdBothDirectoryRestartInfo;
    loop {
        // SAFETY: `buf` is writable for its whole length.
        let r = unsafe {
            GetFileInformationByHandleEx(
                raw(h),
                class,
                buf.as_mut_ptr().cast::<c_void>(),
                (buf.len() * 8) as u32,
            )
        };
        match r {
            Ok(()) => {}
            Err(e) if e.code().0 == HRESULT_NO_MORE_FILES => return Ok(out),
            Err(e) => return Err(status(&e)),
        }
        class = FileIdBothDirectoryInfo;
        let base = buf.as_ptr().cast::<u8>();
        let mut offset = 0usize;
        loop {
            // SAFETY: the system wrote a chain of FILE_ID_BOTH_DIR_INFO records into `buf`; each
            // NextEntryOffset stays inside it, and records are 8-byte aligned.
            let (entry, name) = unsafe {
                let e = &*base.add(offset).cast::<FILE_ID_BOTH_DIR_INFO>();
                let name =
                    std::slice::from_raw_parts(e.FileName.as_ptr(), e.FileNameLength as usize / 2);
                (e, name)
            };
            let name = String::from_utf16_lossy(name);
            if name != "." && name != ".." {
                let reparse = entry.FileAttributes & FILE_ATTRIBUTE_REPARSE_POINT != 0;
                out.push(DirEntry {
                    name,
                    info: Info {
                        attributes: entry.FileAttributes,
                        // For reparse points the EaSize field holds the tag.
                        reparse_tag: if reparse { entry.EaSize } else { 0 },
                        allocation_size: entry.AllocationSize.max(0) as u64,
                        file_size: entry.EndOfFile.max(0) as u64,
                        creation_time: entry.CreationTime as u64,
                        last_access_time: entry.LastAccessTime as u64,
                        last_write_time: entry.LastWriteTime as u64,
                        change_time: entry.ChangeTime as u64,
                        index_number: entry.FileId as u64,
                    },
                });
            }
            if entry.NextEntryOffset == 0 {
                break;
            }
            offset += entry.NextEntryOffset as usize;
        }
    }
}

const SECURITY_INFO: OBJECT_SECURITY_INFORMATION = OBJECT_SECURITY_INFORMATION(
    OWNER_SECURITY_INFORMATION.0 | GROUP_SECURITY_INFORMATION.0 | DACL_SECURITY_INFORMATION.0,
);

/// The object's security descriptor (owner, group, DACL) written into `buf` when given; the size
/// it needs either way.
///
/// # Errors
/// `STATUS_BUFFER_TOO_SMALL` when `buf` is given and too small; the status of a failed call.
pub fn get_security(h: &OwnedHandle, buf: Option<&mut [c_void]>) -> SysResult<u64> {
    let mut needed = 0u32;
    let (ptr, len) = match buf {
        Some(b) => (PSECURITY_DESCRIPTOR(b.as_mut_ptr()), b.len() as u32),
        None => (PSECURITY_DESCRIPTOR(std::ptr::null_mut()), 0),
    };
    // SAFETY: `ptr` is null with length 0, or the caller's buffer of `len` bytes.
    let r =
        unsafe { GetKernelObjectSecurity(raw(h), SECURITY_INFO.0, Some(ptr), len, &mut needed) };
    match r {
        Ok(()) => Ok(u64::from(needed)),
        Err(_) if len == 0 && needed > 0 => Ok(u64::from(needed)),
        Err(_) if needed > len => Err(STATUS_BUFFER_TOO_SMALL),
        Err(e) => Err(status(&e)),
    }
}

/// Applies a security change as WinFsp hands it (the information flags and a descriptor).
///
/// # Errors
/// The status of the failed call.
pub fn set_security(h: &OwnedHandle, info: u32, descriptor: *mut c_void) -> SysResult<()> {
    // SAFETY: WinFsp hands a valid self-relative descriptor for the duration of the callback.
    unsafe {
        SetKernelObjectSecurity(
            raw(h),
            OBJECT_SECURITY_INFORMATION(info),
            PSECURITY_DESCRIPTOR(descriptor),
        )
    }
    .map_err(|e| status(&e))
}

/// A self-relative security descriptor from SDDL, for the objects the overlay makes up.
///
/// # Errors
/// The status of the failed conversion.
pub fn security_from_sddl(sddl: &str) -> SysResult<Vec<u8>> {
    let text = HSTRING::from(sddl);
    let mut sd = PSECURITY_DESCRIPTOR::default();
    // SAFETY: `text` outlives the call; `sd` receives a LocalAlloc'd descriptor we free below.
    unsafe {
        ConvertStringSecurityDescriptorToSecurityDescriptorW(
            PCWSTR(text.as_ptr()),
            SDDL_REVISION_1,
            &mut sd,
            None,
        )
    }
    .map_err(|e| status(&e))?;
    // SAFETY: `sd` is a valid descriptor until freed; we copy its bytes first.
    let bytes = unsafe {
        let len = GetSecurityDescriptorLength(sd) as usize;
        let bytes = std::slice::from_raw_parts(sd.0.cast::<u8>(), len).to_vec();
        LocalFree(Some(HLOCAL(sd.0)));
        bytes
    };
    Ok(bytes)
}

/// Copies a self-relative security descriptor into a WinFsp buffer that is at least as long.
pub fn copy_descriptor(sd: &[u8], buf: &mut [c_void]) {
    let n = sd.len().min(buf.len());
    // SAFETY: both regions are valid for `n` bytes (`c_void` is byte-sized) and do not overlap.
    unsafe { std::ptr::copy_nonoverlapping(sd.as_ptr(), buf.as_mut_ptr().cast::<u8>(), n) };
}

fn fsctl(h: &OwnedHandle, code: u32, input: &[u8], output: Option<&mut [u8]>) -> SysResult<u32> {
    let mut done = 0u32;
    let (out_ptr, out_len) = match output {
        Some(o) => (Some(o.as_mut_ptr().cast::<c_void>()), o.len() as u32),
        None => (None, 0),
    };
    let in_ptr = (!input.is_empty()).then_some(input.as_ptr().cast::<c_void>());
    // SAFETY: the buffers are the caller's, valid for their lengths; the handle is synchronous.
    unsafe {
        DeviceIoControl(
            raw(h),
            code,
            in_ptr,
            input.len() as u32,
            out_ptr,
            out_len,
            Some(&mut done),
            None,
        )
    }
    .map_err(|e| status(&e))?;
    Ok(done)
}

/// The object's own reparse buffer.
///
/// # Errors
/// `STATUS_NOT_A_REPARSE_POINT` and the like.
pub fn get_reparse(h: &OwnedHandle, out: &mut [u8]) -> SysResult<u32> {
    fsctl(h, FSCTL_GET_REPARSE_POINT, &[], Some(out))
}

/// Sets a reparse point on the object.
///
/// # Errors
/// The status of the failed call.
pub fn set_reparse(h: &OwnedHandle, buf: &[u8]) -> SysResult<()> {
    fsctl(h, FSCTL_SET_REPARSE_POINT, buf, None).map(|_| ())
}

/// Deletes the object's reparse point.
///
/// # Errors
/// The status of the failed call.
pub fn delete_reparse(h: &OwnedHandle, buf: &[u8]) -> SysResult<()> {
    fsctl(h, FSCTL_DELETE_REPARSE_POINT, buf, None).map(|_| ())
}

/// Total and free bytes of the volume holding `path`.
///
/// # Errors
/// The status of the failed call.
pub fn disk_space(path: &Path) -> SysResult<(u64, u64)> {
    let name = HSTRING::from(path.as_os_str());
    let (mut total, mut free) = (0u64, 0u64);
    // SAFETY: out-pointers to locals.
    unsafe { GetDiskFreeSpaceExW(&name, None, Some(&mut total), Some(&mut free)) }
        .map_err(|e| status(&e))?;
    Ok((total, free))
}

/// Installs (or removes) a console control handler.
///
/// # Errors
/// The OS error.
pub fn set_console_ctrl_handler(handler: PHANDLER_ROUTINE, add: bool) -> std::io::Result<()> {
    // SAFETY: `handler` is a plain function that stays valid for the process's life.
    unsafe { SetConsoleCtrlHandler(handler, add) }.map_err(std::io::Error::other)
}
