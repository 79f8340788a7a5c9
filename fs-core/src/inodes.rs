//! The inode table: the inodes the kernel holds, found by number, by what they are and by name.
//!
//! Numbers come from a counter and are never reused, so a number the kernel or the daemon still
//! remembers (the parent of an alias, a reply in flight) can never come to mean another object.
//! An inode is deduplicated by its [`Key`] (hard links share one inode) and remembers the names
//! it was looked up by, (parent inode, name), most recently used first, at most
//! [`MAX_ALIASES`]; [`Inodes::path`] rebuilds a virtual path from them.
//!
//! Memory follows what the kernel holds, at about 105 bytes an inode (80 in the vector, the rest
//! in the indices):
//! - the inodes lie dense in one vector, a mapping of its own (see [`SLAB_RESERVE`]); removing
//!   one moves the last into its place (its number does not change), so the vector can shrink
//!   and give its pages back after the kernel forgets a big walk;
//! - a key is 16 bytes: the device, and a directory's tree, are one small interned number (a
//!   mount sees few devices and declares few entries), a virtual path is boxed;
//! - an inode's first name is stored inline, and inline in it a name of up to 22 bytes: the
//!   common inode (one name, a short one) costs no allocation of its own;
//! - the three indices (by number, by key, by (parent, name)) are [`hashbrown::HashTable`]s of
//!   positions in the vector, hashing and comparing through it, so nothing is stored twice.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::os::unix::ffi::OsStrExt;

use hashbrown::HashTable;

use crate::error::{Error, Result};

/// The root inode's number (the kernel's FUSE_ROOT_ID).
pub const ROOT_INO: u64 = 1;

/// How many names of one inode (hard links, or a name reached through several directory inodes)
/// are remembered; the least recently used goes first.
pub(crate) const MAX_ALIASES: usize = 8;

/// What an inode is: the table gives one inode per key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Key<'a> {
    /// A real non-directory: hard links share it.
    Real { dev: u64, ino: u64 },
    /// A real directory, per tree (a target reached through two entries is two directories):
    /// `tree` is the path of the transparent entry it was reached through, `None` in the base.
    RealDir {
        dev: u64,
        ino: u64,
        tree: Option<&'a str>,
    },
    /// A declared link or synthetic directory, by virtual path and whether it is a link (a reload
    /// may turn one into the other: the kernel must see a new inode, never a changed type).
    Virtual(&'a [OsString], bool),
}

/// A key as stored and compared: the device and tree interned as a realm, the (rare) virtual
/// path boxed. 16 bytes.
#[derive(Debug)]
enum StoredKey {
    Real { realm: u32, ino: u64 },
    Virtual(Box<(Box<[OsString]>, bool)>),
}

/// A key as hashed and compared, the same for a stored key and a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum KeyView<'a> {
    Real { realm: u32, ino: u64 },
    Virtual(&'a [OsString], bool),
}

impl StoredKey {
    fn new(view: KeyView<'_>) -> StoredKey {
        match view {
            KeyView::Real { realm, ino } => StoredKey::Real { realm, ino },
            KeyView::Virtual(comps, link) => StoredKey::Virtual(Box::new((comps.into(), link))),
        }
    }

    fn view(&self) -> KeyView<'_> {
        match self {
            StoredKey::Real { realm, ino } => KeyView::Real {
                realm: *realm,
                ino: *ino,
            },
            StoredKey::Virtual(v) => KeyView::Virtual(&v.0, v.1),
        }
    }
}

/// The tree number of a non-directory in a realm: hard links in two trees are one file.
const NO_TREE: u32 = u32::MAX;

/// Bytes a name holds inline.
const INLINE: usize = 22;

/// A name: arbitrary bytes (not necessarily UTF-8), inline up to [`INLINE`] bytes. 24 bytes.
#[derive(Clone, PartialEq, Eq)]
enum Name {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<[u8]>),
}

impl Name {
    fn new(b: &[u8]) -> Name {
        match u8::try_from(b.len()) {
            Ok(len) if b.len() <= INLINE => {
                let mut bytes = [0; INLINE];
                bytes[..b.len()].copy_from_slice(b);
                Name::Inline { len, bytes }
            }
            _ => Name::Heap(b.into()),
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            Name::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Name::Heap(b) => b,
        }
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        OsStr::from_bytes(self.as_bytes()).fmt(f)
    }
}

/// One name of an inode.
#[derive(Debug)]
struct Alias {
    parent: u64,
    /// When it was last bound (looked up, created or moved to): among the inodes that remember
    /// one name, the highest is the one the name leads to now.
    stamp: u64,
    name: Name,
}

impl Alias {
    fn is(&self, parent: u64, name: &[u8]) -> bool {
        self.parent == parent && self.name.as_bytes() == name
    }
}

/// An inode's names, most recently used first: the first inline (most inodes have one name),
/// the others boxed. `more` is `None` or not empty, and `None` when `first` is.
#[derive(Debug, Default)]
struct Aliases {
    first: Option<Alias>,
    #[allow(
        clippy::box_collection,
        reason = "8 bytes in every inode where a Vec is 24: most inodes have one name"
    )]
    more: Option<Box<Vec<Alias>>>,
}

impl Aliases {
    fn iter(&self) -> impl Iterator<Item = &Alias> {
        self.first
            .iter()
            .chain(self.more.iter().flat_map(|m| m.iter()))
    }

    fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.more.as_ref().map_or(0, |m| m.len())
    }

    fn position(&self, parent: u64, name: &[u8]) -> Option<usize> {
        self.iter().position(|a| a.is(parent, name))
    }

    /// Makes the name at `i` the newest, bound at `stamp`.
    fn touch(&mut self, i: usize, stamp: u64) {
        if i == 0 {
            if let Some(a) = &mut self.first {
                a.stamp = stamp;
            }
        } else if let Some(mut a) = self.remove(i) {
            a.stamp = stamp;
            self.push_front(a);
        }
    }

    fn push_front(&mut self, a: Alias) {
        if let Some(old) = self.first.replace(a) {
            self.more.get_or_insert_default().insert(0, old);
        }
    }

    fn remove(&mut self, i: usize) -> Option<Alias> {
        if i == 0 {
            let first = self.first.take();
            self.first = self
                .more
                .as_mut()
                .and_then(|m| (!m.is_empty()).then(|| m.remove(0)));
            self.tidy();
            return first;
        }
        let more = self.more.as_mut()?;
        let a = (i - 1 < more.len()).then(|| more.remove(i - 1));
        self.tidy();
        a
    }

    fn pop_back(&mut self) -> Option<Alias> {
        match self.more.as_mut() {
            Some(more) => {
                let a = more.pop();
                self.tidy();
                a
            }
            None => self.first.take(),
        }
    }

    fn tidy(&mut self) {
        if self.more.as_ref().is_some_and(|m| m.is_empty()) {
            self.more = None;
        }
    }
}

#[derive(Debug)]
struct Inode {
    ino: u64,
    /// The kernel's lookup count: the inode goes when it falls to zero.
    lookups: u64,
    key: StoredKey,
    names: Aliases,
}

/// An entry of the name index: the inode at `slot` remembers a name whose hash is `hash`. The
/// hash is kept because an inode may remember several names: the entry alone must tell which.
#[derive(Debug, Clone, Copy)]
struct NameRef {
    slot: u32,
    hash: u32,
}

/// `n` as the 32-bit number the indices and keys hold.
///
/// # Errors
/// ENOMEM past 2^32 (inodes, or realms).
fn small_number(n: usize) -> Result<u32> {
    u32::try_from(n).map_err(|_| Error::Os(std::io::Error::from_raw_os_error(libc::ENOMEM)))
}

/// The hash of an inode number. Numbers come from the counter, not from users, so a
/// multiplicative hash is enough: consecutive numbers fall in consecutive buckets, and the top
/// bits, which hashbrown compares first, are well mixed.
fn ino_hash(ino: u64) -> u64 {
    ino.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// The table hash of a name entry, from the 32 bits it keeps.
fn spread(hash: u32) -> u64 {
    u64::from(hash).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// The hash a name entry keeps: the low half of the full hash, 32 good bits being all that
/// tables of up to 2^32 entries use.
fn name_hash(hasher: &RandomState, parent: u64, name: &[u8]) -> u32 {
    hasher.hash_one((parent, name)) as u32
}

/// Address space the slab reserves up front: 32 MiB, the most that glibc ever serves from its
/// heaps (the ceiling of its dynamic mmap threshold), so the slab is a mapping of its own from the
/// start. Pages cost nothing until an inode is written to them; growing past the reservation and
/// shrinking are remaps, never copies, and a shrink gives the pages back to the system at once. A
/// vector grown by doubling inside a heap would leave each old copy behind there instead, as much
/// again as it holds, and a heap rarely gives memory back.
const SLAB_RESERVE: usize = 32 << 20;

/// The inodes the kernel holds; see the module documentation.
pub(crate) struct Inodes {
    /// The inodes, dense: removing one moves the last into its place.
    slab: Vec<Inode>,
    /// Number -> slot.
    by_ino: HashTable<u32>,
    /// Key -> slot.
    by_key: HashTable<u32>,
    /// (parent, name) -> the slots of the inodes that remember that name: unlink and rename find
    /// them without scanning every inode. Usually one; more while an old inode lives on beside
    /// the new one (a retargeted entry's old directory, a file replaced behind the mount).
    by_name: HashTable<NameRef>,
    /// Tree (transparent entry path) -> its number; 0 is the base.
    trees: HashMap<Box<str>, u32>,
    /// (device, tree number or [`NO_TREE`]) -> the realm number in keys. Both maps are small
    /// (the devices under the mount, the entries declared) and never shrink.
    realms: HashMap<(u64, u32), u32>,
    hasher: RandomState,
    next_ino: u64,
    next_stamp: u64,
}

impl fmt::Debug for Inodes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inodes")
            .field("len", &self.slab.len())
            .field("names", &self.by_name.len())
            .field("next_ino", &self.next_ino)
            .finish_non_exhaustive()
    }
}

impl Inodes {
    /// A table holding the root, [`ROOT_INO`], which is never forgotten.
    pub(crate) fn new() -> Inodes {
        let mut t = Inodes {
            slab: Vec::with_capacity(SLAB_RESERVE.div_ceil(std::mem::size_of::<Inode>())),
            by_ino: HashTable::new(),
            by_key: HashTable::new(),
            by_name: HashTable::new(),
            trees: HashMap::new(),
            realms: HashMap::new(),
            hasher: RandomState::new(),
            next_ino: ROOT_INO,
            next_stamp: 0,
        };
        let root = KeyView::Virtual(&[], false);
        let hash = t.hasher.hash_one(root);
        // An empty table always has room for one.
        if let Ok(slot) = t.insert(root, hash) {
            t.slab[slot].lookups = 1;
        }
        t
    }

    /// Whether the inode `ino` exists.
    pub(crate) fn contains(&self, ino: u64) -> bool {
        self.slot(ino).is_some()
    }

    /// The number of inodes, the root included.
    pub(crate) fn len(&self) -> usize {
        self.slab.len()
    }

    fn slot(&self, ino: u64) -> Option<usize> {
        let slab = &self.slab;
        self.by_ino
            .find(ino_hash(ino), |&s| slab[s as usize].ino == ino)
            .map(|&s| s as usize)
    }

    /// Whether `ino` is the inode for `key` now (false when it is gone or another object).
    pub(crate) fn holds(&self, ino: u64, key: Key<'_>) -> bool {
        let Some(slot) = self.slot(ino) else {
            return false;
        };
        let view = match key {
            Key::Virtual(comps, link) => Some(KeyView::Virtual(comps, link)),
            real => self
                .realm_of(real)
                .map(|(realm, ino)| KeyView::Real { realm, ino }),
        };
        view.is_some_and(|v| self.slab[slot].key.view() == v)
    }

    /// A real key's tree number (0 for the base, [`NO_TREE`] for a non-directory), if known.
    fn tree_of<'a>(&self, key: Key<'a>) -> Option<std::result::Result<u32, &'a str>> {
        match key {
            Key::Real { .. } => Some(Ok(NO_TREE)),
            Key::RealDir { tree: None, .. } => Some(Ok(0)),
            Key::RealDir {
                tree: Some(path), ..
            } => Some(self.trees.get(path).copied().ok_or(path)),
            Key::Virtual(..) => None,
        }
    }

    /// A real key's (realm, inode), if its tree and realm are known already.
    fn realm_of(&self, key: Key<'_>) -> Option<(u32, u64)> {
        let (Key::Real { dev, ino } | Key::RealDir { dev, ino, .. }) = key else {
            return None;
        };
        let tree = self.tree_of(key)?.ok()?;
        Some((*self.realms.get(&(dev, tree))?, ino))
    }

    fn view<'a>(&mut self, key: Key<'a>) -> Result<KeyView<'a>> {
        let (dev, ino) = match key {
            Key::Real { dev, ino } | Key::RealDir { dev, ino, .. } => (dev, ino),
            Key::Virtual(comps, link) => return Ok(KeyView::Virtual(comps, link)),
        };
        let tree = match self.tree_of(key) {
            Some(Ok(id)) => id,
            Some(Err(path)) => {
                let id = small_number(self.trees.len() + 1)?;
                self.trees.insert(path.into(), id);
                id
            }
            None => return Err(Error::NotFound),
        };
        let realm = match self.realms.get(&(dev, tree)) {
            Some(&realm) => realm,
            None => {
                let realm = small_number(self.realms.len())?;
                self.realms.insert((dev, tree), realm);
                realm
            }
        };
        Ok(KeyView::Real { realm, ino })
    }

    fn name_hash(&self, parent: u64, name: &[u8]) -> u32 {
        name_hash(&self.hasher, parent, name)
    }

    /// Finds or makes the inode for `key`, reached as (parent, name), which becomes its newest
    /// name; counts a lookup if asked. Returns its number.
    ///
    /// # Errors
    /// ENOMEM when the table holds 2^32 inodes (or keys 2^32 devices and trees).
    pub(crate) fn intern(
        &mut self,
        key: Key<'_>,
        parent: u64,
        name: &OsStr,
        count: bool,
    ) -> Result<u64> {
        let view = self.view(key)?;
        let hash = self.hasher.hash_one(view);
        let slab = &self.slab;
        let found = self
            .by_key
            .find(hash, |&s| slab[s as usize].key.view() == view)
            .map(|&s| s as usize);
        let slot = match found {
            Some(slot) => slot,
            None => self.insert(view, hash)?,
        };
        self.slab[slot].lookups += u64::from(count);
        self.add_name(slot, parent, name.as_bytes());
        Ok(self.slab[slot].ino)
    }

    /// A new inode without names or lookups, at the end of the vector.
    fn insert(&mut self, view: KeyView<'_>, hash: u64) -> Result<usize> {
        let slot = self.slab.len();
        let s = small_number(slot)?;
        let ino = self.next_ino;
        self.next_ino += 1;
        self.slab.push(Inode {
            ino,
            lookups: 0,
            key: StoredKey::new(view),
            names: Aliases::default(),
        });
        let (slab, hasher) = (&self.slab, &self.hasher);
        self.by_ino
            .insert_unique(ino_hash(ino), s, |&s| ino_hash(slab[s as usize].ino));
        self.by_key
            .insert_unique(hash, s, |&s| hasher.hash_one(slab[s as usize].key.view()));
        Ok(slot)
    }

    /// Makes (parent, name) the newest name of the inode at `slot`.
    fn add_name(&mut self, slot: usize, parent: u64, name: &[u8]) {
        let stamp = self.next_stamp;
        self.next_stamp += 1;
        let names = &mut self.slab[slot].names;
        if let Some(pos) = names.position(parent, name) {
            // Most recently used name first: it is the likeliest to still exist.
            names.touch(pos, stamp);
            return;
        }
        names.push_front(Alias {
            parent,
            stamp,
            name: Name::new(name),
        });
        let dropped = if names.len() > MAX_ALIASES {
            names.pop_back()
        } else {
            None
        };
        let hash = self.name_hash(parent, name);
        // `slot` fits: it came from the index.
        let s = slot as u32;
        self.by_name
            .insert_unique(spread(hash), NameRef { slot: s, hash }, |r| spread(r.hash));
        if let Some(d) = dropped {
            self.unindex_name(slot, d.parent, d.name.as_bytes());
        }
    }

    /// Removes the index entry saying that the inode at `slot` remembers (parent, name).
    fn unindex_name(&mut self, slot: usize, parent: u64, name: &[u8]) {
        let hash = self.name_hash(parent, name);
        if let Ok(e) = self
            .by_name
            .find_entry(spread(hash), |r| r.slot as usize == slot && r.hash == hash)
        {
            e.remove();
        }
    }

    /// The inodes that remember (parent, name): (stamp, slot), in no order.
    fn holders<'a>(
        &'a self,
        parent: u64,
        name: &'a [u8],
    ) -> impl Iterator<Item = (u64, usize)> + 'a {
        let hash = self.name_hash(parent, name);
        self.by_name
            .iter_hash(spread(hash))
            .filter(move |r| r.hash == hash)
            .filter_map(move |r| {
                let slot = r.slot as usize;
                let a = self.slab[slot].names.iter().find(|a| a.is(parent, name))?;
                Some((a.stamp, slot))
            })
    }

    /// Drops `n` lookups of `ino`; the inode goes at zero (the root never goes). Returns true
    /// when the table has just shrunk after a big forget: the caller then gives the freed memory
    /// back to the system, outside its lock.
    pub(crate) fn forget(&mut self, ino: u64, n: u64) -> bool {
        if ino == ROOT_INO {
            return false;
        }
        let Some(slot) = self.slot(ino) else {
            return false;
        };
        let inode = &mut self.slab[slot];
        inode.lookups = inode.lookups.saturating_sub(n);
        if inode.lookups > 0 {
            return false;
        }
        self.remove(slot);
        // After a big walk the kernel forgets in bulk: shrink once the table is mostly empty,
        // so the daemon's size follows what the kernel holds.
        let len = self.slab.len();
        if self.by_ino.capacity() > 4096 && len < self.by_ino.capacity() / 8 {
            let (slab, hasher) = (&self.slab, &self.hasher);
            self.by_ino
                .shrink_to(len * 2, |&s| ino_hash(slab[s as usize].ino));
            self.by_key
                .shrink_to(len * 2, |&s| hasher.hash_one(slab[s as usize].key.view()));
            self.by_name.shrink_to(len * 2, |r| spread(r.hash));
            self.slab.shrink_to(len * 2);
            return true;
        }
        false
    }

    /// Removes the inode at `slot` from the indices and the vector; the last inode takes its
    /// place.
    fn remove(&mut self, slot: usize) {
        let (slab, hasher) = (&self.slab, &self.hasher);
        let inode = &slab[slot];
        if let Ok(e) = self
            .by_ino
            .find_entry(ino_hash(inode.ino), |&s| s as usize == slot)
        {
            e.remove();
        }
        let key_hash = hasher.hash_one(inode.key.view());
        if let Ok(e) = self.by_key.find_entry(key_hash, |&s| s as usize == slot) {
            e.remove();
        }
        for a in inode.names.iter() {
            let hash = name_hash(hasher, a.parent, a.name.as_bytes());
            let found = self
                .by_name
                .find_entry(spread(hash), |r| r.slot as usize == slot && r.hash == hash);
            if let Ok(e) = found {
                e.remove();
            }
        }
        let last = self.slab.len() - 1;
        self.slab.swap_remove(slot);
        if slot == last {
            return;
        }
        // The last inode moved to `slot`: point its entries there.
        let (slab, hasher) = (&self.slab, &self.hasher);
        let moved = &slab[slot];
        let s = slot as u32;
        if let Some(e) = self
            .by_ino
            .find_mut(ino_hash(moved.ino), |&e| e as usize == last)
        {
            *e = s;
        }
        let key_hash = hasher.hash_one(moved.key.view());
        if let Some(e) = self.by_key.find_mut(key_hash, |&e| e as usize == last) {
            *e = s;
        }
        for a in moved.names.iter() {
            let hash = name_hash(hasher, a.parent, a.name.as_bytes());
            let found = self
                .by_name
                .find_mut(spread(hash), |r| r.slot as usize == last && r.hash == hash);
            if let Some(r) = found {
                r.slot = s;
            }
        }
    }

    /// The virtual path of `ino`, through the newest name of each inode whose parent the kernel
    /// still holds: a file reached through two directory inodes (a retargeted entry, hard links)
    /// keeps working when one goes.
    ///
    /// # Errors
    /// NotFound for an unknown inode or one without a name left; ELOOP past 4096 steps.
    pub(crate) fn path(&self, ino: u64) -> Result<Vec<OsString>> {
        let mut out = Vec::new();
        let mut cur = ino;
        let mut slot = self.slot(cur).ok_or(Error::NotFound)?;
        while cur != ROOT_INO {
            // The root is in the table: its children find it like any parent.
            let (alias, parent) = self.slab[slot]
                .names
                .iter()
                .find_map(|a| Some((a, self.slot(a.parent)?)))
                .ok_or(Error::NotFound)?;
            out.push(OsStr::from_bytes(alias.name.as_bytes()).to_owned());
            (cur, slot) = (alias.parent, parent);
            if out.len() > 4096 {
                return Err(Error::Os(std::io::Error::from_raw_os_error(libc::ELOOP)));
            }
        }
        out.reverse();
        Ok(out)
    }

    /// The parent of the name [`Inodes::path`] rebuilds `ino`'s path from.
    pub(crate) fn parent_of(&self, ino: u64) -> Option<u64> {
        let slot = self.slot(ino)?;
        self.slab[slot]
            .names
            .iter()
            .find(|a| self.slot(a.parent).is_some())
            .map(|a| a.parent)
    }

    /// The inode that the virtual path `comps` leads to, by the names the inodes remember (the
    /// newest holder of each), if the kernel holds one.
    pub(crate) fn find(&self, comps: &[OsString]) -> Option<u64> {
        let mut cur = ROOT_INO;
        for comp in comps {
            let (_, slot) = self.holders(cur, comp.as_bytes()).max()?;
            cur = self.slab[slot].ino;
        }
        Some(cur)
    }

    /// Forgets the name (parent, name) everywhere: it was unlinked or removed.
    pub(crate) fn unbind(&mut self, parent: u64, name: &OsStr) {
        self.take_name(parent, name.as_bytes());
    }

    /// Forgets (parent, name) everywhere; returns the slots of the inodes that had it, in the
    /// order they took it.
    fn take_name(&mut self, parent: u64, name: &[u8]) -> Vec<usize> {
        let mut holders: Vec<(u64, usize)> = self.holders(parent, name).collect();
        holders.sort_unstable();
        for &(_, slot) in &holders {
            self.unindex_name(slot, parent, name);
            let names = &mut self.slab[slot].names;
            if let Some(pos) = names.position(parent, name) {
                names.remove(pos);
            }
        }
        holders.into_iter().map(|(_, slot)| slot).collect()
    }

    /// Moves (parent, name) to (newparent, newname), which it replaces: a rename.
    pub(crate) fn rename(&mut self, parent: u64, name: &OsStr, newparent: u64, newname: &OsStr) {
        self.take_name(newparent, newname.as_bytes());
        self.move_name(parent, name.as_bytes(), newparent, newname.as_bytes());
    }

    /// Swaps the inodes of two names: a rename with RENAME_EXCHANGE.
    pub(crate) fn exchange(&mut self, parent: u64, name: &OsStr, other: u64, othername: &OsStr) {
        // A name no inode has: no inode is numbered u64::MAX, no name holds a NUL.
        const TMP: (u64, &[u8]) = (u64::MAX, b"\0redirfs-exchange");
        let (a, b) = (name.as_bytes(), othername.as_bytes());
        self.move_name(parent, a, TMP.0, TMP.1);
        self.move_name(other, b, parent, a);
        self.move_name(TMP.0, TMP.1, other, b);
    }

    /// Gives (newparent, newname), as their newest name, to the inodes that remember
    /// (parent, name), which they forget.
    fn move_name(&mut self, parent: u64, name: &[u8], newparent: u64, newname: &[u8]) {
        for slot in self.take_name(parent, name) {
            self.add_name(slot, newparent, newname);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::mem::size_of;

    impl Inodes {
        /// Every inode: (number, lookups, names newest first).
        fn dump(&self) -> Dump {
            let mut v: Vec<_> = self
                .slab
                .iter()
                .map(|i| {
                    let names = i
                        .names
                        .iter()
                        .map(|a| (a.parent, a.name.as_bytes().to_vec()))
                        .collect();
                    (i.ino, i.lookups, names)
                })
                .collect();
            v.sort();
            v
        }

        /// The numbers of the inodes that remember (parent, name), oldest first.
        fn holders_of(&self, parent: u64, name: &[u8]) -> Vec<u64> {
            let mut h: Vec<_> = self.holders(parent, name).collect();
            h.sort_unstable();
            h.into_iter().map(|(_, s)| self.slab[s].ino).collect()
        }

        /// Every index entry points at what it claims to, and every fact has its entry.
        fn check(&self) {
            assert_eq!(self.by_ino.len(), self.slab.len());
            assert_eq!(self.by_key.len(), self.slab.len());
            let names: usize = self.slab.iter().map(|i| i.names.len()).sum();
            assert_eq!(self.by_name.len(), names);
            for (slot, inode) in self.slab.iter().enumerate() {
                assert_eq!(self.slot(inode.ino), Some(slot));
                let view = inode.key.view();
                let found = self
                    .by_key
                    .find(self.hasher.hash_one(view), |&s| s as usize == slot);
                assert!(found.is_some(), "key of slot {slot} not indexed");
                assert!(inode.names.len() <= MAX_ALIASES);
                assert!(inode.names.more.as_ref().is_none_or(|m| !m.is_empty()));
                assert!(inode.names.first.is_some() || inode.names.more.is_none());
                for a in inode.names.iter() {
                    let hash = self.name_hash(a.parent, a.name.as_bytes());
                    let n = self
                        .by_name
                        .iter_hash(spread(hash))
                        .filter(|r| r.slot as usize == slot && r.hash == hash)
                        .count();
                    let same = inode
                        .names
                        .iter()
                        .filter(|b| self.name_hash(b.parent, b.name.as_bytes()) == hash)
                        .count();
                    assert_eq!(n, same, "name entries of slot {slot}");
                }
            }
        }
    }

    /// An inode's names, newest first.
    type Names = Vec<(u64, Vec<u8>)>;
    /// Every inode: (number, lookups, names), by number.
    type Dump = Vec<(u64, u64, Names)>;

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn sizes() {
        assert_eq!(size_of::<Name>(), 24);
        assert_eq!(size_of::<StoredKey>(), 16);
        assert_eq!(size_of::<Option<Alias>>(), 40);
        assert_eq!(size_of::<Inode>(), 80);
        // The slab is its own mapping from the start (see SLAB_RESERVE).
        assert!(Inodes::new().slab.capacity() * size_of::<Inode>() >= 32 << 20);
    }

    #[test]
    fn names_inline_and_on_the_heap() {
        for len in [0, 1, INLINE - 1, INLINE, INLINE + 1, 255, 300] {
            let b: Vec<u8> = (0..len).map(|i| (i % 251) as u8 + 1).collect();
            let n = Name::new(&b);
            assert_eq!(n.as_bytes(), &b[..]);
            assert_eq!(matches!(n, Name::Inline { .. }), len <= INLINE);
        }
        assert_eq!(Name::new(b"\xff\xfe").as_bytes(), b"\xff\xfe");
    }

    fn os(s: &str) -> OsString {
        OsString::from(s)
    }

    #[test]
    fn hard_links_share_an_inode_and_the_newest_parent_wins() {
        let mut t = Inodes::new();
        let file = Key::Real { dev: 1, ino: 10 };
        let d1 = t
            .intern(Key::Virtual(&[os("d1")], false), ROOT_INO, &os("d1"), true)
            .expect("intern");
        let d2 = t
            .intern(Key::Virtual(&[os("d2")], false), ROOT_INO, &os("d2"), true)
            .expect("intern");
        let a = t.intern(file, d1, &os("a"), true).expect("intern");
        let b = t.intern(file, d2, &os("b"), true).expect("intern");
        assert_eq!(a, b);
        assert_eq!(t.path(a).expect("a path"), [os("d2"), os("b")]);
        // d2 forgotten: the older name still leads there.
        assert!(!t.forget(d2, 1));
        assert_eq!(t.path(a).expect("a path"), [os("d1"), os("a")]);
        assert_eq!(t.find(&[os("d1"), os("a")]), Some(a));
        assert_eq!(t.find(&[os("d2"), os("b")]), None);
        t.unbind(d1, &os("a"));
        assert!(matches!(t.path(a), Err(Error::NotFound)));
        assert!(!t.forget(a, 2));
        assert_eq!(t.len(), 2);
        t.check();
    }

    #[test]
    fn directories_differ_by_tree() {
        let mut t = Inodes::new();
        let k = |tree| Key::RealDir {
            dev: 1,
            ino: 5,
            tree,
        };
        let base = t.intern(k(None), ROOT_INO, &os("x"), true).expect("intern");
        let e1 = t
            .intern(k(Some("e/one")), ROOT_INO, &os("y"), true)
            .expect("intern");
        let e2 = t
            .intern(k(Some("e/two")), ROOT_INO, &os("z"), true)
            .expect("intern");
        assert_eq!(
            t.intern(k(Some("e/one")), ROOT_INO, &os("y"), true)
                .expect("intern"),
            e1
        );
        assert!(base != e1 && e1 != e2 && base != e2);
        t.check();
    }

    #[test]
    fn numbers_are_never_reused() {
        let mut t = Inodes::new();
        let a = t
            .intern(Key::Real { dev: 1, ino: 1 }, ROOT_INO, &os("a"), true)
            .expect("intern");
        t.forget(a, 1);
        let b = t
            .intern(Key::Real { dev: 1, ino: 1 }, ROOT_INO, &os("a"), true)
            .expect("intern");
        assert!(b > a);
        assert!(!t.forget(ROOT_INO, 1));
        assert_eq!(t.path(ROOT_INO).expect("a path"), Vec::<OsString>::new());
    }

    #[test]
    fn a_big_forget_shrinks_the_table() {
        let mut t = Inodes::new();
        let n = 20_000u64;
        let mut inos = Vec::new();
        for i in 0..n {
            let name = os(&format!("f{i}"));
            inos.push(
                t.intern(Key::Real { dev: 1, ino: i }, ROOT_INO, &name, true)
                    .expect("intern"),
            );
        }
        let big = t.by_ino.capacity();
        assert!(big >= n as usize);
        let mut shrunk = 0;
        // Keep a few, scattered, as a kernel would.
        for (i, ino) in inos.iter().enumerate() {
            if i % 5000 != 17 && t.forget(*ino, 1) {
                shrunk += 1;
            }
        }
        assert!(shrunk >= 1);
        assert_eq!(t.len(), 1 + 4);
        assert!(t.by_ino.capacity() < 4096);
        assert!(t.slab.capacity() < 4096);
        t.check();
        for (i, ino) in inos.iter().enumerate() {
            if i % 5000 == 17 {
                assert_eq!(t.path(*ino).expect("a path"), [os(&format!("f{i}"))]);
            }
        }
    }

    #[test]
    fn exchange_swaps_the_names() {
        let mut t = Inodes::new();
        let a = t
            .intern(Key::Real { dev: 1, ino: 1 }, ROOT_INO, &os("a"), true)
            .expect("intern");
        let b = t
            .intern(Key::Real { dev: 1, ino: 2 }, ROOT_INO, &os("b"), true)
            .expect("intern");
        t.exchange(ROOT_INO, &os("a"), ROOT_INO, &os("b"));
        assert_eq!(t.path(a).expect("a path"), [os("b")]);
        assert_eq!(t.path(b).expect("a path"), [os("a")]);
        assert_eq!(t.find(&[os("a")]), Some(b));
        t.check();
    }

    #[test]
    fn at_most_max_aliases_names() {
        let mut t = Inodes::new();
        let k = Key::Real { dev: 1, ino: 1 };
        let mut ino = 0;
        for i in 0..MAX_ALIASES + 3 {
            ino = t
                .intern(k, ROOT_INO, &os(&format!("n{i}")), true)
                .expect("intern");
        }
        let names = &t.dump()[1].2;
        assert_eq!(names.len(), MAX_ALIASES);
        assert_eq!(names[0].1, b"n10");
        assert_eq!(t.find(&[os("n0")]), None);
        assert_eq!(t.find(&[os("n3")]), Some(ino));
        t.check();
    }

    /// The table as it was before it was made compact: plain maps and vectors, the reference the
    /// property test compares with.
    #[derive(Debug, Default)]
    struct Model {
        map: std::collections::HashMap<u64, (ModelKey, Names, u64)>,
        by_key: std::collections::HashMap<ModelKey, u64>,
        by_name: std::collections::HashMap<(u64, Vec<u8>), Vec<u64>>,
        next: u64,
    }

    #[derive(Debug, Clone, PartialEq, Eq, Hash)]
    enum ModelKey {
        Real(u64, u64),
        RealDir(u64, u64, Option<String>),
        Virtual(Vec<OsString>, bool),
    }

    impl Model {
        fn new() -> Model {
            let mut m = Model {
                next: ROOT_INO + 1,
                ..Model::default()
            };
            let root = ModelKey::Virtual(Vec::new(), false);
            m.map.insert(ROOT_INO, (root.clone(), Vec::new(), 1));
            m.by_key.insert(root, ROOT_INO);
            m
        }

        fn bind(&mut self, parent: u64, name: &[u8], ino: u64) {
            let h = self.by_name.entry((parent, name.to_vec())).or_default();
            h.retain(|i| *i != ino);
            h.push(ino);
        }

        fn release(&mut self, alias: &(u64, Vec<u8>), ino: u64) {
            if let Some(h) = self.by_name.get_mut(alias) {
                h.retain(|i| *i != ino);
                if h.is_empty() {
                    self.by_name.remove(alias);
                }
            }
        }

        fn unbind(&mut self, parent: u64, name: &[u8]) -> Vec<u64> {
            let alias = (parent, name.to_vec());
            let holders = self.by_name.remove(&alias).unwrap_or_default();
            for ino in &holders {
                if let Some(i) = self.map.get_mut(ino) {
                    i.1.retain(|a| *a != alias);
                }
            }
            holders
        }

        fn intern(&mut self, key: ModelKey, parent: u64, name: &[u8], count: bool) -> u64 {
            if let Some(&ino) = self.by_key.get(&key) {
                let inode = self.map.get_mut(&ino).expect("by_key and map agree");
                if count {
                    inode.2 += 1;
                }
                let alias = (parent, name.to_vec());
                let mut dropped = None;
                if let Some(pos) = inode.1.iter().position(|a| *a == alias) {
                    inode.1[..=pos].rotate_right(1);
                } else {
                    inode.1.insert(0, alias);
                    if inode.1.len() > MAX_ALIASES {
                        dropped = inode.1.pop();
                    }
                }
                if let Some(d) = dropped {
                    self.release(&d, ino);
                }
                self.bind(parent, name, ino);
                return ino;
            }
            let ino = self.next;
            self.next += 1;
            self.by_key.insert(key.clone(), ino);
            self.map
                .insert(ino, (key, vec![(parent, name.to_vec())], u64::from(count)));
            self.bind(parent, name, ino);
            ino
        }

        fn forget(&mut self, ino: u64, n: u64) {
            if ino == ROOT_INO {
                return;
            }
            let Some(inode) = self.map.get_mut(&ino) else {
                return;
            };
            inode.2 = inode.2.saturating_sub(n);
            if inode.2 == 0 {
                let (key, names, _) = self.map.remove(&ino).expect("just found");
                self.by_key.remove(&key);
                for a in &names {
                    self.release(a, ino);
                }
            }
        }

        fn move_alias(&mut self, parent: u64, name: &[u8], np: u64, nn: &[u8]) {
            for ino in self.unbind(parent, name) {
                let mut dropped = None;
                if let Some(inode) = self.map.get_mut(&ino) {
                    inode.1.insert(0, (np, nn.to_vec()));
                    if inode.1.len() > MAX_ALIASES {
                        dropped = inode.1.pop();
                    }
                }
                if let Some(d) = dropped {
                    self.release(&d, ino);
                }
                self.bind(np, nn, ino);
            }
        }

        fn path(&self, ino: u64) -> Option<Vec<OsString>> {
            let mut out = Vec::new();
            let mut cur = ino;
            while cur != ROOT_INO {
                let inode = self.map.get(&cur)?;
                let (parent, name) = inode
                    .1
                    .iter()
                    .find(|(p, _)| *p == ROOT_INO || self.map.contains_key(p))?;
                out.push(OsStr::from_bytes(name).to_owned());
                cur = *parent;
                if out.len() > 4096 {
                    return None;
                }
            }
            out.reverse();
            Some(out)
        }

        fn find(&self, comps: &[OsString]) -> Option<u64> {
            let mut cur = ROOT_INO;
            for c in comps {
                cur = *self.by_name.get(&(cur, c.as_bytes().to_vec()))?.last()?;
            }
            Some(cur)
        }

        fn dump(&self) -> Dump {
            let mut v: Vec<_> = self
                .map
                .iter()
                .map(|(ino, (_, names, lookups))| (*ino, *lookups, names.clone()))
                .collect();
            v.sort();
            v
        }
    }

    const NAMES: [&[u8]; 6] = [
        b"a",
        b"b",
        b"c",
        b"exactly-twenty-two-by",
        b"a name longer than twenty-two bytes",
        b"\xff\xfe",
    ];
    const TREES: [Option<&str>; 3] = [None, Some("tr"), Some("tr/deeper")];

    #[derive(Debug, Clone)]
    enum Op {
        /// Key (kind, number), parent (index into the known numbers), name, count.
        Intern(u8, u64, prop::sample::Index, usize, bool),
        Forget(prop::sample::Index, u64),
        Unbind(prop::sample::Index, usize),
        Rename(prop::sample::Index, usize, prop::sample::Index, usize),
        Exchange(prop::sample::Index, usize, prop::sample::Index, usize),
        Find(Vec<usize>),
    }

    fn op() -> impl Strategy<Value = Op> {
        let idx = any::<prop::sample::Index>;
        let name = || 0..NAMES.len();
        prop_oneof![
            6 => (0u8..6, 0u64..6, idx(), name(), prop::bool::weighted(0.9))
                .prop_map(|(k, n, p, s, c)| Op::Intern(k, n, p, s, c)),
            3 => (idx(), 1u64..3).prop_map(|(i, n)| Op::Forget(i, n)),
            1 => (idx(), name()).prop_map(|(p, s)| Op::Unbind(p, s)),
            2 => (idx(), name(), idx(), name()).prop_map(|(p, s, q, t)| Op::Rename(p, s, q, t)),
            1 => (idx(), name(), idx(), name()).prop_map(|(p, s, q, t)| Op::Exchange(p, s, q, t)),
            1 => prop::collection::vec(name(), 1..4).prop_map(Op::Find),
        ]
    }

    fn key(kind: u8, n: u64) -> (ModelKey, KeyOwned) {
        match kind {
            0 | 1 => {
                let dev = u64::from(kind);
                (ModelKey::Real(dev, n), KeyOwned::Real(dev, n))
            }
            2 | 3 => {
                let (dev, tree) = (u64::from(kind) - 2, TREES[n as usize % TREES.len()]);
                (
                    ModelKey::RealDir(dev, n, tree.map(str::to_owned)),
                    KeyOwned::RealDir(dev, n, tree),
                )
            }
            _ => {
                let comps: Vec<OsString> = (0..n % 3)
                    .map(|i| OsStr::from_bytes(NAMES[i as usize]).to_owned())
                    .collect();
                let link = kind == 5;
                (
                    ModelKey::Virtual(comps.clone(), link),
                    KeyOwned::Virtual(comps, link),
                )
            }
        }
    }

    enum KeyOwned {
        Real(u64, u64),
        RealDir(u64, u64, Option<&'static str>),
        Virtual(Vec<OsString>, bool),
    }

    impl KeyOwned {
        fn key(&self) -> Key<'_> {
            match self {
                KeyOwned::Real(dev, ino) => Key::Real {
                    dev: *dev,
                    ino: *ino,
                },
                KeyOwned::RealDir(dev, ino, tree) => Key::RealDir {
                    dev: *dev,
                    ino: *ino,
                    tree: *tree,
                },
                KeyOwned::Virtual(c, l) => Key::Virtual(c, *l),
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        /// The compact table behaves as the plain one under any sequence of operations.
        #[test]
        fn behaves_as_the_plain_table(ops in prop::collection::vec(op(), 1..120)) {
            let mut t = Inodes::new();
            let mut m = Model::new();
            // Every number ever handed out, live or forgotten, and one never handed out.
            let mut known = vec![ROOT_INO, 999];
            let os = |i: usize| OsStr::from_bytes(NAMES[i]);
            let n = ops.len();
            for (step, op) in ops.into_iter().enumerate() {
                match op {
                    Op::Intern(kind, n, parent, name, count) => {
                        let (mk, k) = key(kind, n);
                        let p = *parent.get(&known);
                        let got = t.intern(k.key(), p, os(name), count).expect("intern");
                        let want = m.intern(mk, p, NAMES[name], count);
                        prop_assert_eq!(got, want);
                        if !known.contains(&got) {
                            known.push(got);
                        }
                    }
                    Op::Forget(i, n) => {
                        let ino = *i.get(&known);
                        t.forget(ino, n);
                        m.forget(ino, n);
                    }
                    Op::Unbind(p, name) => {
                        let p = *p.get(&known);
                        t.unbind(p, os(name));
                        m.unbind(p, NAMES[name]);
                    }
                    Op::Rename(p, name, q, newname) => {
                        let (p, q) = (*p.get(&known), *q.get(&known));
                        t.rename(p, os(name), q, os(newname));
                        m.unbind(q, NAMES[newname]);
                        m.move_alias(p, NAMES[name], q, NAMES[newname]);
                    }
                    Op::Exchange(p, name, q, othername) => {
                        let (p, q) = (*p.get(&known), *q.get(&known));
                        t.exchange(p, os(name), q, os(othername));
                        let tmp = b"\0redirfs-exchange";
                        m.move_alias(p, NAMES[name], u64::MAX, tmp);
                        m.move_alias(q, NAMES[othername], p, NAMES[name]);
                        m.move_alias(u64::MAX, tmp, q, NAMES[othername]);
                    }
                    Op::Find(path) => {
                        let comps: Vec<OsString> = path.iter().map(|&i| os(i).to_owned()).collect();
                        prop_assert_eq!(t.find(&comps), m.find(&comps));
                    }
                }
                t.check();
                prop_assert_eq!(t.len(), m.map.len());
                prop_assert_eq!(t.dump(), m.dump());
                for (alias, holders) in &m.by_name {
                    prop_assert_eq!(&t.holders_of(alias.0, &alias.1), holders);
                }
                // Every few steps only: names may form loops, each walked 4096 steps.
                if step % 8 == 0 || step + 1 == n {
                    for &ino in &known {
                        prop_assert_eq!(t.path(ino).ok(), m.path(ino));
                    }
                }
            }
        }
    }
}
