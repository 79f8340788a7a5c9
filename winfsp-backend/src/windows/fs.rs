//! winfsp's `FileSystemContext` for the overlay: one callback, one policy decision, one system
//! call or made-up answer. Every callback runs through [`guard`], so no panic reaches WinFsp.

use std::collections::HashMap;
use std::ffi::c_void;
use std::os::windows::io::OwnedHandle;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use fs_core::{Error, SharedTable, Table};
use winfsp::constants::FspCleanupFlags;
use winfsp::filesystem::{
    DirBuffer, DirInfo, DirMarker, FileInfo, FileSecurity, FileSystemContext,
    ModificationDescriptor, OpenFileInfo, VolumeInfo, WideNameInfo,
};
use winfsp::{FspError, U16CStr};

use super::sys::{self, CreateRequest, SysResult};
use crate::attr::{self, Info, Kind, FILE_ATTRIBUTE_NORMAL, FILE_ATTRIBUTE_REPARSE_POINT};
use crate::guard::{guard, guard_unit};
use crate::names::{join_relative, split_file_name};
use crate::policy::{
    check_create, check_delete, check_rename, classify, declared_names, plan_link,
    visible_real_names, LinkPlan, Place, Real, RenamePlan, WinHost,
};
use crate::status::{
    status_of, NtStatus, STATUS_ACCESS_DENIED, STATUS_BUFFER_TOO_SMALL, STATUS_FILE_IS_A_DIRECTORY,
    STATUS_INVALID_DEVICE_REQUEST, STATUS_INVALID_HANDLE, STATUS_MEDIA_WRITE_PROTECTED,
    STATUS_NOT_A_DIRECTORY, STATUS_NOT_A_REPARSE_POINT, STATUS_OBJECT_NAME_NOT_FOUND,
    STATUS_OBJECT_PATH_NOT_FOUND, STATUS_SHARING_VIOLATION,
};
use crate::{JunctionMode, MountOptions};

// NtCreateFile options and dispositions (ntifs.h).
const FILE_DIRECTORY_FILE: u32 = 0x0000_0001;
const FILE_SYNCHRONOUS_IO_NONALERT: u32 = 0x0000_0020;
const FILE_NON_DIRECTORY_FILE: u32 = 0x0000_0040;
const FILE_NO_EA_KNOWLEDGE: u32 = 0x0000_0200;
const FILE_DELETE_ON_CLOSE: u32 = 0x0000_1000;
const FILE_OPEN_FOR_BACKUP_INTENT: u32 = 0x0000_4000;
const FILE_OPEN_REPARSE_POINT: u32 = 0x0020_0000;
const FILE_OPEN: u32 = 1;
const FILE_CREATE: u32 = 2;
// Access rights (winnt.h).
const READ_CONTROL: u32 = 0x0002_0000;
const SYNCHRONIZE: u32 = 0x0010_0000;
const MAXIMUM_ALLOWED: u32 = 0x0200_0000;
const FILE_READ_ATTRIBUTES: u32 = 0x0080;

/// The security descriptor of what the overlay makes up (synthetic directories, link entries):
/// SYSTEM and Administrators full control, everyone read and execute. Changes are refused by
/// the overlay whatever it says.
const MADE_UP_SDDL: &str = "O:BAG:BAD:P(A;;FA;;;SY)(A;;FA;;;BA)(A;;FRFX;;;WD)";

fn fsp(st: NtStatus) -> FspError {
    FspError::NTSTATUS(st.0)
}

fn core(e: &Error) -> NtStatus {
    status_of(e)
}

fn fill(out: &mut FileInfo, info: &Info) {
    out.file_attributes = info.attributes;
    out.reparse_tag = info.reparse_tag;
    out.allocation_size = info.allocation_size;
    out.file_size = info.file_size;
    out.creation_time = info.creation_time;
    out.last_access_time = info.last_access_time;
    out.last_write_time = info.last_write_time;
    out.change_time = info.change_time;
    out.index_number = info.index_number;
    // WinFsp has no hard links.
    out.hard_links = 0;
    out.ea_size = 0;
}

/// What an open handle stands for.
#[derive(Debug)]
enum Target {
    /// A real file or directory, with the root it was opened under. The handle is taken at
    /// cleanup when the file is deleted, so that the name goes at once.
    Real {
        file: RwLock<Option<OwnedHandle>>,
        is_dir: bool,
        read_only: bool,
    },
    /// A link entry opened as itself (`FILE_OPEN_REPARSE_POINT`).
    Link,
    /// A directory made of declarations only.
    Synthetic,
}

/// An open handle of the overlay.
#[derive(Debug)]
pub struct Handle {
    /// The path as opened, updated by renames.
    path: RwLock<Vec<String>>,
    target: Target,
    dir: DirBuffer,
}

impl Handle {
    fn new(path: Vec<String>, target: Target) -> Handle {
        Handle {
            path: RwLock::new(path),
            target,
            dir: DirBuffer::new(),
        }
    }

    fn path(&self) -> Vec<String> {
        self.path
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The open real file, for operations only real files support.
    fn with_real<T>(&self, f: impl FnOnce(&OwnedHandle, bool) -> SysResult<T>) -> SysResult<T> {
        match &self.target {
            Target::Real { file, is_dir, .. } => {
                let guard = file.read().unwrap_or_else(PoisonError::into_inner);
                let h = guard.as_ref().ok_or(STATUS_INVALID_HANDLE)?;
                f(h, *is_dir)
            }
            Target::Link | Target::Synthetic => Err(STATUS_INVALID_DEVICE_REQUEST),
        }
    }

    fn writable(&self) -> SysResult<()> {
        match &self.target {
            Target::Real {
                read_only: true, ..
            } => Err(STATUS_ACCESS_DENIED),
            Target::Real { .. } => Ok(()),
            Target::Link | Target::Synthetic => Err(STATUS_ACCESS_DENIED),
        }
    }
}

/// The overlay as WinFsp sees it.
#[derive(Debug)]
pub struct Drive {
    table: SharedTable,
    junction_mode: JunctionMode,
    volume_label: String,
    roots: RwLock<HashMap<PathBuf, Arc<OwnedHandle>>>,
    made_up_sd: Vec<u8>,
    mounted_at: u64,
}

impl Drive {
    /// The overlay over `table`.
    ///
    /// # Errors
    /// The made-up security descriptor could not be built.
    pub fn new(table: Table, opts: &MountOptions) -> SysResult<Drive> {
        Ok(Drive {
            table: SharedTable::new(table),
            junction_mode: opts.junction_mode,
            volume_label: opts.volume_label.clone(),
            roots: RwLock::new(HashMap::new()),
            made_up_sd: sys::security_from_sddl(MADE_UP_SDDL)?,
            mounted_at: attr::system_time_to_filetime(std::time::SystemTime::now()),
        })
    }

    /// The handle of a root (the base or a transparent target), opened once.
    fn root(&self, path: &Path) -> SysResult<Arc<OwnedHandle>> {
        if let Some(h) = self
            .roots
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(path)
        {
            return Ok(Arc::clone(h));
        }
        let h = Arc::new(sys::open_root(path)?);
        self.roots
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(path.to_path_buf(), Arc::clone(&h));
        Ok(h)
    }

    fn plan(&self, entry: &fs_core::Entry) -> SysResult<LinkPlan> {
        let is_dir = fs_core::place::link_is_dir(&WinHost, entry);
        plan_link(entry, is_dir, self.junction_mode).map_err(|e| {
            log::warn!("`{}`: target {e}", entry.path);
            STATUS_OBJECT_NAME_NOT_FOUND
        })
    }

    fn link_info(&self, plan: &LinkPlan) -> Info {
        let kind = if plan.is_dir { Kind::Dir } else { Kind::File };
        Info::made_up(
            attr::attributes(kind, false, true),
            plan.shown.tag(),
            self.mounted_at,
        )
    }

    fn synthetic_info(&self) -> Info {
        Info::made_up(
            attr::attributes(Kind::Dir, false, false),
            0,
            self.mounted_at,
        )
    }

    /// Not found: the name, or (when the parent is missing too) the path.
    fn not_found(&self, table: &Table, comps: &[String]) -> NtStatus {
        match comps.split_last() {
            Some((_, parent)) if !parent.is_empty() => match classify(table, &WinHost, parent) {
                Place::Absent => STATUS_OBJECT_PATH_NOT_FOUND,
                _ => STATUS_OBJECT_NAME_NOT_FOUND,
            },
            _ => STATUS_OBJECT_NAME_NOT_FOUND,
        }
    }

    /// Opens the real object `at` (reached as `comps`), falling back from `MAXIMUM_ALLOWED` to
    /// what was granted.
    fn open_real(
        &self,
        at: &Real<'_>,
        comps: &[String],
        granted: u32,
        options: u32,
    ) -> SysResult<OwnedHandle> {
        let root = self.root(at.root)?;
        let rel = join_relative(at.rel(comps));
        let mut req = CreateRequest {
            access: MAXIMUM_ALLOWED | SYNCHRONIZE,
            disposition: FILE_OPEN,
            options: options
                | FILE_SYNCHRONOUS_IO_NONALERT
                | FILE_OPEN_FOR_BACKUP_INTENT
                | FILE_OPEN_REPARSE_POINT,
            attributes: 0,
            security: None,
            allocation: 0,
            ea: None,
        };
        let h = match sys::nt_create(&root, &rel, &req) {
            Ok(h) => h,
            Err(st)
                if st == STATUS_ACCESS_DENIED
                    || st == STATUS_MEDIA_WRITE_PROTECTED
                    || st == STATUS_SHARING_VIOLATION
                    || st == crate::status::STATUS_INVALID_PARAMETER =>
            {
                req.access = granted | SYNCHRONIZE;
                sys::nt_create(&root, &rel, &req)?
            }
            Err(st) => return Err(st),
        };
        Ok(h)
    }

    /// The real object `at` (reached as `comps`) opened only to read its attributes (and
    /// security, when `security`).
    fn peek_real(&self, at: &Real<'_>, comps: &[String], security: bool) -> SysResult<OwnedHandle> {
        let root = self.root(at.root)?;
        let access = FILE_READ_ATTRIBUTES | if security { READ_CONTROL } else { 0 };
        sys::nt_create(
            &root,
            &join_relative(at.rel(comps)),
            &CreateRequest {
                access,
                disposition: FILE_OPEN,
                options: FILE_OPEN_FOR_BACKUP_INTENT | FILE_OPEN_REPARSE_POINT,
                attributes: 0,
                security: None,
                allocation: 0,
                ea: None,
            },
        )
    }

    fn write_made_up_sd(&self, buf: Option<&mut [c_void]>) -> SysResult<u64> {
        let len = self.made_up_sd.len() as u64;
        if let Some(buf) = buf {
            if buf.len() < self.made_up_sd.len() {
                return Err(STATUS_BUFFER_TOO_SMALL);
            }
            sys::copy_descriptor(&self.made_up_sd, buf);
        }
        Ok(len)
    }

    fn security_by_name(
        &self,
        file_name: &U16CStr,
        sd: Option<&mut [c_void]>,
    ) -> SysResult<FileSecurity> {
        let comps = split_file_name(file_name.as_slice()).map_err(|e| core(&e))?;
        let table = self.table.load();
        let made_up = |attributes: u32, sd| -> SysResult<FileSecurity> {
            Ok(FileSecurity {
                reparse: false,
                sz_security_descriptor: self.write_made_up_sd(sd)?,
                attributes,
            })
        };
        match classify(&table, &WinHost, &comps) {
            Place::Link(e) => {
                let plan = self.plan(e)?;
                made_up(self.link_info(&plan).attributes, sd)
            }
            Place::Synthetic { .. } => made_up(self.synthetic_info().attributes, sd),
            Place::Real(at) => {
                let h = self.peek_real(&at, &comps, true)?;
                let info = sys::query_info(&h)?;
                Ok(FileSecurity {
                    reparse: false,
                    sz_security_descriptor: sys::get_security(&h, sd)?,
                    attributes: info.attributes,
                })
            }
            Place::BeneathLink { .. } | Place::Absent => Err(self.not_found(&table, &comps)),
        }
    }

    fn do_open(
        &self,
        file_name: &U16CStr,
        create_options: u32,
        granted: u32,
        out: &mut OpenFileInfo,
    ) -> SysResult<Handle> {
        let comps = split_file_name(file_name.as_slice()).map_err(|e| core(&e))?;
        let table = self.table.load();
        if create_options & FILE_DELETE_ON_CLOSE != 0 {
            check_delete(&table, &WinHost, &comps).map_err(|e| core(&e))?;
        }
        let place = classify(&table, &WinHost, &comps);
        match place {
            Place::Link(e) => {
                let plan = self.plan(e)?;
                fill(out.as_mut(), &self.link_info(&plan));
                Ok(Handle::new(comps, Target::Link))
            }
            Place::Synthetic { .. } => {
                if create_options & FILE_NON_DIRECTORY_FILE != 0 {
                    return Err(STATUS_FILE_IS_A_DIRECTORY);
                }
                fill(out.as_mut(), &self.synthetic_info());
                Ok(Handle::new(comps, Target::Synthetic))
            }
            Place::Real(at) => {
                let options = create_options
                    & (FILE_DIRECTORY_FILE
                        | FILE_NON_DIRECTORY_FILE
                        | FILE_NO_EA_KNOWLEDGE
                        | FILE_DELETE_ON_CLOSE);
                let h = self.open_real(&at, &comps, granted, options)?;
                let info = sys::query_info(&h)?;
                fill(out.as_mut(), &info);
                Ok(Handle::new(
                    comps,
                    Target::Real {
                        file: RwLock::new(Some(h)),
                        is_dir: info.attributes & attr::FILE_ATTRIBUTE_DIRECTORY != 0,
                        read_only: at.read_only,
                    },
                ))
            }
            Place::BeneathLink { .. } | Place::Absent => Err(self.not_found(&table, &comps)),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn do_create(
        &self,
        file_name: &U16CStr,
        create_options: u32,
        granted: u32,
        file_attributes: u32,
        security: Option<&[c_void]>,
        allocation: u64,
        extra: Option<&[u8]>,
        extra_is_reparse: bool,
        out: &mut OpenFileInfo,
    ) -> SysResult<Handle> {
        let comps = split_file_name(file_name.as_slice()).map_err(|e| core(&e))?;
        let table = self.table.load();
        let at = check_create(&table, &WinHost, &comps).map_err(|e| core(&e))?;
        let root = self.root(at.root)?;
        let rel = join_relative(at.rel(&comps));
        let options = (create_options
            & (FILE_DIRECTORY_FILE
                | FILE_NON_DIRECTORY_FILE
                | FILE_NO_EA_KNOWLEDGE
                | FILE_DELETE_ON_CLOSE))
            | FILE_SYNCHRONOUS_IO_NONALERT
            | FILE_OPEN_FOR_BACKUP_INTENT;
        let mut req = CreateRequest {
            access: MAXIMUM_ALLOWED | SYNCHRONIZE,
            disposition: FILE_CREATE,
            options,
            attributes: if file_attributes == 0 {
                FILE_ATTRIBUTE_NORMAL
            } else {
                file_attributes
            },
            security,
            allocation,
            ea: if extra_is_reparse { None } else { extra },
        };
        let h = match sys::nt_create(&root, &rel, &req) {
            Ok(h) => h,
            Err(st) if st == crate::status::STATUS_INVALID_PARAMETER => {
                req.access = granted | SYNCHRONIZE;
                sys::nt_create(&root, &rel, &req)?
            }
            Err(st) => return Err(st),
        };
        if let (Some(buf), true) = (extra, extra_is_reparse) {
            sys::set_reparse(&h, buf)?;
        }
        let info = sys::query_info(&h)?;
        fill(out.as_mut(), &info);
        Ok(Handle::new(
            comps,
            Target::Real {
                file: RwLock::new(Some(h)),
                is_dir: create_options & FILE_DIRECTORY_FILE != 0,
                read_only: false,
            },
        ))
    }

    fn do_cleanup(&self, ctx: &Handle, flags: u32) {
        if !FspCleanupFlags::FspCleanupDelete.is_flagged(flags) {
            return;
        }
        let Target::Real { file, .. } = &ctx.target else {
            // set_delete refused already; nothing declared is ever deleted.
            return;
        };
        let table = self.table.load();
        let decided = check_delete(&table, &WinHost, &ctx.path());
        let mut slot = file.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(h) = slot.as_ref() {
            if let Err(e) = decided {
                // The declaration changed under an open handle: keep the object.
                log::warn!("not deleting `{}`: {e}", ctx.path().join("\\"));
                let _ = sys::set_delete(h, false);
                return;
            }
            if let Err(st) = sys::set_delete(h, true) {
                log::debug!("delete `{}`: {st}", ctx.path().join("\\"));
            }
        }
        // Closing the handle with the disposition set removes the name now.
        drop(slot.take());
    }

    fn fill_dir(&self, ctx: &Handle) -> SysResult<()> {
        let comps = ctx.path();
        let table = self.table.load();
        let lock = ctx
            .dir
            .acquire(true, None)
            .map_err(|e| NtStatus(e.to_ntstatus()))?;
        let mut entry: DirInfo = DirInfo::new();
        let mut add = |name: &str, info: &Info| -> SysResult<()> {
            entry.reset();
            entry
                .set_name(name)
                .map_err(|e| NtStatus(e.to_ntstatus()))?;
            fill(entry.file_info_mut(), info);
            lock.write(&mut entry)
                .map_err(|e| NtStatus(e.to_ntstatus()))
        };
        if !comps.is_empty() {
            let me = self.synthetic_info();
            add(".", &me)?;
            add("..", &me)?;
        }
        let declared = match classify(&table, &WinHost, &comps) {
            Place::Synthetic { dir, .. } => Some(dir),
            Place::Real(r) => r.declared,
            Place::Link(_) | Place::BeneathLink { .. } => return Err(STATUS_NOT_A_DIRECTORY),
            Place::Absent => return Err(STATUS_OBJECT_NAME_NOT_FOUND),
        };
        if let Target::Real { .. } = &ctx.target {
            let real = ctx.with_real(|h, _| sys::read_dir(h))?;
            let mut infos: HashMap<String, Info> =
                real.iter().map(|e| (e.name.clone(), e.info)).collect();
            for name in visible_real_names(real.into_iter().map(|e| e.name), declared) {
                if let Some(info) = infos.remove(&name) {
                    add(&name, &info)?;
                }
            }
        }
        if let Some(dir) = declared {
            for name in declared_names(dir) {
                let mut child = comps.clone();
                child.push(name.clone());
                // One broken entry never breaks the listing: it is left out.
                let info = match classify(&table, &WinHost, &child) {
                    Place::Link(e) => match self.plan(e) {
                        Ok(plan) => self.link_info(&plan),
                        Err(_) => continue,
                    },
                    Place::Synthetic { .. } => self.synthetic_info(),
                    Place::Real(at) => match self.peek_real(&at, &child, false) {
                        Ok(h) => sys::query_info(&h)?,
                        Err(_) => continue,
                    },
                    Place::BeneathLink { .. } | Place::Absent => continue,
                };
                add(&name, &info)?;
            }
        }
        Ok(())
    }

    fn reparse_of(
        &self,
        comps: &[String],
        buffer: &mut [u8],
        for_resolver: bool,
    ) -> SysResult<u64> {
        let table = self.table.load();
        match classify(&table, &WinHost, comps) {
            Place::Link(e) => {
                let plan = self.plan(e)?;
                let rp = if for_resolver {
                    &plan.resolved
                } else {
                    &plan.shown
                };
                rp.write_into(buffer)
                    .map(|n| n as u64)
                    .map_err(|_| STATUS_BUFFER_TOO_SMALL)
            }
            Place::Real(at) => {
                let h = self.peek_real(&at, comps, false)?;
                let info = sys::query_info(&h)?;
                if info.attributes & FILE_ATTRIBUTE_REPARSE_POINT == 0 {
                    return Err(STATUS_NOT_A_REPARSE_POINT);
                }
                sys::get_reparse(&h, buffer).map(u64::from)
            }
            Place::Synthetic { .. } => Err(STATUS_NOT_A_REPARSE_POINT),
            Place::BeneathLink { .. } | Place::Absent => Err(self.not_found(&table, comps)),
        }
    }

    /// Refuses changes to a reparse point on a declared object.
    fn reparse_change(&self, ctx: &Handle) -> SysResult<()> {
        let table = self.table.load();
        match classify(&table, &WinHost, &ctx.path()) {
            Place::Real(r) if !r.tree_root && r.declared.is_none() => ctx.writable(),
            _ => Err(core(&Error::DeclaredEntry)),
        }
    }
}

impl FileSystemContext for Drive {
    type FileContext = Handle;

    fn get_security_by_name(
        &self,
        file_name: &U16CStr,
        security_descriptor: Option<&mut [c_void]>,
        reparse_point_resolver: impl FnOnce(&U16CStr) -> Option<FileSecurity>,
    ) -> winfsp::Result<FileSecurity> {
        guard("get_security_by_name", || {
            // A reparse point (a link entry, or a real link in the base) before the last
            // component: WinFsp resolves it.
            if let Some(security) = reparse_point_resolver(file_name) {
                return Ok(security);
            }
            self.security_by_name(file_name, security_descriptor)
        })
        .map_err(fsp)
    }

    fn open(
        &self,
        file_name: &U16CStr,
        create_options: u32,
        granted_access: u32,
        file_info: &mut OpenFileInfo,
    ) -> winfsp::Result<Handle> {
        guard("open", || {
            self.do_open(file_name, create_options, granted_access, file_info)
        })
        .map_err(fsp)
    }

    fn close(&self, context: Handle) {
        guard_unit("close", || drop(context));
    }

    fn create(
        &self,
        file_name: &U16CStr,
        create_options: u32,
        granted_access: u32,
        file_attributes: u32,
        security_descriptor: Option<&[c_void]>,
        allocation_size: u64,
        extra_buffer: Option<&[u8]>,
        extra_buffer_is_reparse_point: bool,
        file_info: &mut OpenFileInfo,
    ) -> winfsp::Result<Handle> {
        guard("create", || {
            self.do_create(
                file_name,
                create_options,
                granted_access,
                file_attributes,
                security_descriptor,
                allocation_size,
                extra_buffer,
                extra_buffer_is_reparse_point,
                file_info,
            )
        })
        .map_err(fsp)
    }

    fn cleanup(&self, context: &Handle, _file_name: Option<&U16CStr>, flags: u32) {
        guard_unit("cleanup", || self.do_cleanup(context, flags));
    }

    fn flush(&self, context: Option<&Handle>, file_info: &mut FileInfo) -> winfsp::Result<()> {
        guard("flush", || {
            let Some(ctx) = context else {
                return Ok(()); // the volume: every write already went to the real files
            };
            match &ctx.target {
                Target::Real { .. } => ctx.with_real(|h, is_dir| {
                    if !is_dir {
                        sys::flush(h)?;
                    }
                    fill(file_info, &sys::query_info(h)?);
                    Ok(())
                }),
                Target::Link | Target::Synthetic => Ok(()),
            }
        })
        .map_err(fsp)
    }

    fn get_file_info(&self, context: &Handle, file_info: &mut FileInfo) -> winfsp::Result<()> {
        guard("get_file_info", || {
            let info = match &context.target {
                Target::Real { .. } => context.with_real(|h, _| sys::query_info(h))?,
                Target::Synthetic => self.synthetic_info(),
                Target::Link => {
                    let table = self.table.load();
                    match classify(&table, &WinHost, &context.path()) {
                        Place::Link(e) => self.link_info(&self.plan(e)?),
                        _ => return Err(STATUS_OBJECT_NAME_NOT_FOUND),
                    }
                }
            };
            fill(file_info, &info);
            Ok(())
        })
        .map_err(fsp)
    }

    fn get_security(
        &self,
        context: &Handle,
        security_descriptor: Option<&mut [c_void]>,
    ) -> winfsp::Result<u64> {
        guard("get_security", || match &context.target {
            Target::Real { .. } => {
                context.with_real(|h, _| sys::get_security(h, security_descriptor))
            }
            Target::Link | Target::Synthetic => self.write_made_up_sd(security_descriptor),
        })
        .map_err(fsp)
    }

    fn set_security(
        &self,
        context: &Handle,
        security_information: u32,
        modification_descriptor: ModificationDescriptor,
    ) -> winfsp::Result<()> {
        guard("set_security", || {
            context.writable()?;
            context.with_real(|h, _| {
                sys::set_security(
                    h,
                    security_information,
                    modification_descriptor.as_mut_ptr(),
                )
            })
        })
        .map_err(fsp)
    }

    fn overwrite(
        &self,
        context: &Handle,
        file_attributes: u32,
        replace_file_attributes: bool,
        _allocation_size: u64,
        _extra_buffer: Option<&[u8]>,
        file_info: &mut FileInfo,
    ) -> winfsp::Result<()> {
        guard("overwrite", || {
            context.writable()?;
            context.with_real(|h, _| {
                let current = sys::query_info(h)?.attributes;
                if let Some(a) =
                    attr::overwrite_attributes(file_attributes, replace_file_attributes, current)
                {
                    sys::set_basic(h, a, [0; 4])?;
                }
                sys::set_allocation(h, 0)?;
                fill(file_info, &sys::query_info(h)?);
                Ok(())
            })
        })
        .map_err(fsp)
    }

    fn read_directory(
        &self,
        context: &Handle,
        _pattern: Option<&U16CStr>,
        marker: DirMarker,
        buffer: &mut [u8],
    ) -> winfsp::Result<u32> {
        guard("read_directory", || {
            match &context.target {
                Target::Real { is_dir: false, .. } => return Err(STATUS_NOT_A_DIRECTORY),
                Target::Link => return Err(STATUS_NOT_A_DIRECTORY),
                Target::Real { .. } | Target::Synthetic => {}
            }
            if marker.is_none() {
                self.fill_dir(context)?;
            }
            Ok(context.dir.read(marker, buffer))
        })
        .map_err(fsp)
    }

    fn rename(
        &self,
        context: &Handle,
        file_name: &U16CStr,
        new_file_name: &U16CStr,
        replace_if_exists: bool,
    ) -> winfsp::Result<()> {
        guard("rename", || {
            let from = split_file_name(file_name.as_slice()).map_err(|e| core(&e))?;
            let to = split_file_name(new_file_name.as_slice()).map_err(|e| core(&e))?;
            let table = self.table.load();
            let plan = check_rename(&table, &WinHost, &from, &to, replace_if_exists)
                .map_err(|e| core(&e))?;
            match plan {
                RenamePlan::Within { to: dir, .. } => {
                    let root = self.root(dir.root)?;
                    context.with_real(|h, _| {
                        sys::rename(h, &root, &join_relative(dir.rel(&to)), replace_if_exists)
                    })?;
                }
                // An editor's save onto a transparent file entry replaces the target's file;
                // across volumes WinFsp's caller copies (STATUS_NOT_SAME_DEVICE).
                RenamePlan::ReplaceTarget { entry, .. } => {
                    let (Some(dir), Some(name)) = (entry.target.parent(), entry.target.file_name())
                    else {
                        return Err(core(&Error::DeclaredEntry));
                    };
                    let root = self.root(dir)?;
                    let name = name.to_string_lossy().into_owned();
                    context.with_real(|h, _| sys::rename(h, &root, &name, true))?;
                }
            }
            *context.path.write().unwrap_or_else(PoisonError::into_inner) = to;
            Ok(())
        })
        .map_err(fsp)
    }

    fn set_basic_info(
        &self,
        context: &Handle,
        file_attributes: u32,
        creation_time: u64,
        last_access_time: u64,
        last_write_time: u64,
        last_change_time: u64,
        file_info: &mut FileInfo,
    ) -> winfsp::Result<()> {
        guard("set_basic_info", || {
            context.writable()?;
            context.with_real(|h, _| {
                sys::set_basic(
                    h,
                    attr::basic_info_attributes(file_attributes),
                    [
                        creation_time,
                        last_access_time,
                        last_write_time,
                        last_change_time,
                    ],
                )?;
                fill(file_info, &sys::query_info(h)?);
                Ok(())
            })
        })
        .map_err(fsp)
    }

    fn set_delete(
        &self,
        context: &Handle,
        _file_name: &U16CStr,
        delete_file: bool,
    ) -> winfsp::Result<()> {
        guard("set_delete", || {
            if delete_file {
                let table = self.table.load();
                check_delete(&table, &WinHost, &context.path()).map_err(|e| core(&e))?;
            }
            match &context.target {
                Target::Real { .. } => context.with_real(|h, _| sys::set_delete(h, delete_file)),
                Target::Link | Target::Synthetic if delete_file => Err(core(&Error::DeclaredEntry)),
                Target::Link | Target::Synthetic => Ok(()),
            }
        })
        .map_err(fsp)
    }

    fn set_file_size(
        &self,
        context: &Handle,
        new_size: u64,
        set_allocation_size: bool,
        file_info: &mut FileInfo,
    ) -> winfsp::Result<()> {
        guard("set_file_size", || {
            context.writable()?;
            context.with_real(|h, _| {
                if set_allocation_size {
                    sys::set_allocation(h, new_size)?;
                } else {
                    sys::set_end_of_file(h, new_size)?;
                }
                fill(file_info, &sys::query_info(h)?);
                Ok(())
            })
        })
        .map_err(fsp)
    }

    fn read(&self, context: &Handle, buffer: &mut [u8], offset: u64) -> winfsp::Result<u32> {
        guard("read", || {
            context.with_real(|h, is_dir| {
                if is_dir {
                    return Err(STATUS_FILE_IS_A_DIRECTORY);
                }
                sys::read_at(h, buffer, offset)
            })
        })
        .map_err(fsp)
    }

    fn write(
        &self,
        context: &Handle,
        buffer: &[u8],
        offset: u64,
        write_to_eof: bool,
        constrained_io: bool,
        file_info: &mut FileInfo,
    ) -> winfsp::Result<u32> {
        guard("write", || {
            context.writable()?;
            context.with_real(|h, is_dir| {
                if is_dir {
                    return Err(STATUS_FILE_IS_A_DIRECTORY);
                }
                let written = if constrained_io {
                    let len = attr::constrained_len(offset, buffer.len(), sys::file_size(h)?);
                    if len == 0 {
                        0
                    } else {
                        sys::write_at(h, &buffer[..len], offset)?
                    }
                } else {
                    let at = if write_to_eof { u64::MAX } else { offset };
                    sys::write_at(h, buffer, at)?
                };
                fill(file_info, &sys::query_info(h)?);
                Ok(written)
            })
        })
        .map_err(fsp)
    }

    fn get_volume_info(&self, out_volume_info: &mut VolumeInfo) -> winfsp::Result<()> {
        guard("get_volume_info", || {
            let table = self.table.load();
            let space = table
                .base()
                .map(Path::to_path_buf)
                .into_iter()
                .chain(table.rules().iter().map(|e| e.target.clone()))
                .find_map(|p| sys::disk_space(&p).ok())
                .unwrap_or((0, 0));
            out_volume_info.total_size = space.0;
            out_volume_info.free_size = space.1;
            out_volume_info.set_volume_label(&self.volume_label);
            Ok(())
        })
        .map_err(fsp)
    }

    fn get_reparse_point_by_name(
        &self,
        file_name: &U16CStr,
        _is_directory: bool,
        buffer: &mut [u8],
    ) -> winfsp::Result<u64> {
        guard("get_reparse_point_by_name", || {
            let comps = split_file_name(file_name.as_slice()).map_err(|e| core(&e))?;
            self.reparse_of(&comps, buffer, true)
        })
        .map_err(fsp)
    }

    fn get_reparse_point(
        &self,
        context: &Handle,
        _file_name: &U16CStr,
        buffer: &mut [u8],
    ) -> winfsp::Result<u64> {
        guard("get_reparse_point", || match &context.target {
            Target::Real { .. } => {
                context.with_real(|h, _| sys::get_reparse(h, buffer).map(u64::from))
            }
            Target::Link => self.reparse_of(&context.path(), buffer, false),
            Target::Synthetic => Err(STATUS_NOT_A_REPARSE_POINT),
        })
        .map_err(fsp)
    }

    fn set_reparse_point(
        &self,
        context: &Handle,
        _file_name: &U16CStr,
        buffer: &[u8],
    ) -> winfsp::Result<()> {
        guard("set_reparse_point", || {
            self.reparse_change(context)?;
            context.with_real(|h, _| sys::set_reparse(h, buffer))
        })
        .map_err(fsp)
    }

    fn delete_reparse_point(
        &self,
        context: &Handle,
        _file_name: &U16CStr,
        buffer: &[u8],
    ) -> winfsp::Result<()> {
        guard("delete_reparse_point", || {
            self.reparse_change(context)?;
            context.with_real(|h, _| sys::delete_reparse(h, buffer))
        })
        .map_err(fsp)
    }
}
