//! Unwind tables for unwinding in BPF: an object's `.eh_frame` compiled in user space (gimli)
//! into one flat array of rows sorted by address. Each row says, from that instruction on, how
//! to find the canonical frame address (CFA) and the caller's `rbp` on x86-64, where the return
//! address always sits at CFA − 8. The BPF program will binary-search such arrays in maps at a
//! uprobe hit, because the kernel's frame-pointer walk gives wrong stacks for code built
//! without frame pointers (glibc, libstdc++, Swift `-O`, Debian's perl and python3). [`walk`]
//! is that walk in Rust: it is the reference the BPF side is held to, and it is checked here
//! against libgcc's own DWARF unwinder.
//!
//! ```
//! use allocflame_backend_ebpf::unwind::{Cfa, Row, Table};
//! let table = Table::from_rows(vec![
//!     Row { pc: 0x1000, cfa: Cfa::Sp(8), rbp: None },       // at entry: CFA = rsp + 8
//!     Row { pc: 0x1001, cfa: Cfa::Sp(16), rbp: Some(-16) }, // after push rbp
//!     Row { pc: 0x1040, cfa: Cfa::End, rbp: None },         // the function ends here
//! ]);
//! assert_eq!(table.find(0x1020).unwrap().cfa, Cfa::Sp(16));
//! assert!(table.find(0x1040).is_none(), "no CFI past the function");
//! ```

use gimli::{
    BaseAddresses, CfaRule, CieOrFde, EhFrame, LittleEndian, RegisterRule, UnwindContext,
    UnwindSection, X86_64,
};
use object::{Object, ObjectSection};

/// How a row finds the canonical frame address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cfa {
    /// `rsp + offset`.
    Sp(i32),
    /// `rbp + offset`.
    Bp(i32),
    /// A DWARF expression or another register: not unwound (PLT stubs, signal trampolines).
    Unsupported,
    /// The outermost frame: the return address is undefined (`_start`, `clone3`).
    Outermost,
    /// No CFI covers the address (the gap after a function's last instruction).
    End,
}

/// One row of a [`Table`]: from `pc` (a virtual address of the object, as its ELF file has it)
/// up to the next row's, the CFA rule and where the caller's `rbp` was saved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Row {
    /// The first address the row applies to.
    pub pc: u64,
    /// How to find the CFA.
    pub cfa: Cfa,
    /// The caller's `rbp` is at `CFA + offset`; `None`: `rbp` still holds it.
    pub rbp: Option<i32>,
}

/// An object's unwind rows, sorted by address, consecutive equal rules merged.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Table {
    rows: Vec<Row>,
    /// FDEs that could not be read or had rules this table cannot hold.
    pub skipped: usize,
}

impl Table {
    /// The table of rows given in any order; where two rows start at one address, the later
    /// one given wins (a function starting where the one before it ended).
    pub fn from_rows(mut rows: Vec<Row>) -> Table {
        // Stable: rows of one address keep their order, so that the last one wins below.
        rows.sort_by_key(|r| r.pc);
        let mut out: Vec<Row> = Vec::with_capacity(rows.len());
        for row in rows {
            if out.last().is_some_and(|last| last.pc == row.pc) {
                out.pop();
            }
            if out
                .last()
                .is_some_and(|last| (last.cfa, last.rbp) == (row.cfa, row.rbp))
            {
                continue;
            }
            out.push(row);
        }
        Table {
            rows: out,
            skipped: 0,
        }
    }

    /// The table of the ELF file `data` from its `.eh_frame`.
    pub fn from_elf(data: &[u8]) -> Result<Table, String> {
        let file = object::File::parse(data).map_err(|e| format!("not an ELF file: {e}"))?;
        let section = file
            .section_by_name(".eh_frame")
            .ok_or("the file has no .eh_frame")?;
        let bytes = section
            .data()
            .map_err(|e| format!("cannot read .eh_frame: {e}"))?;
        let mut bases = BaseAddresses::default().set_eh_frame(section.address());
        if let Some(text) = file.section_by_name(".text") {
            bases = bases.set_text(text.address());
        }
        if let Some(got) = file.section_by_name(".got") {
            bases = bases.set_got(got.address());
        }
        let eh_frame = EhFrame::new(bytes, LittleEndian);
        let mut context = Box::new(UnwindContext::new());
        let mut rows = Vec::new();
        let mut skipped = 0;
        let mut entries = eh_frame.entries(&bases);
        loop {
            let entry = match entries.next() {
                Ok(Some(e)) => e,
                Ok(None) => break,
                // A broken entry ends the walk of the section: what came before stays.
                Err(_) => {
                    skipped += 1;
                    break;
                }
            };
            let CieOrFde::Fde(partial) = entry else {
                continue;
            };
            let Ok(fde) = partial.parse(EhFrame::cie_from_offset) else {
                skipped += 1;
                continue;
            };
            let Ok(mut table) = fde.rows(&eh_frame, &bases, &mut context) else {
                skipped += 1;
                continue;
            };
            let before = rows.len();
            loop {
                match table.next_row() {
                    Ok(Some(row)) => rows.push(Row {
                        pc: row.start_address(),
                        cfa: cfa_of(row.cfa(), row.register(X86_64::RA)),
                        rbp: match row.register(X86_64::RBP) {
                            RegisterRule::Offset(o) => i32::try_from(o).ok(),
                            _ => None,
                        },
                    }),
                    Ok(None) => break,
                    Err(_) => {
                        rows.truncate(before);
                        skipped += 1;
                        break;
                    }
                }
            }
            rows.push(Row {
                pc: fde.end_address(),
                cfa: Cfa::End,
                rbp: None,
            });
        }
        // An FDE's end row must not hide the start of the function right after it: order the
        // rows of one address end first.
        rows.sort_by_key(|r| (r.pc, r.cfa != Cfa::End));
        let mut table = Table::from_rows(rows);
        table.skipped = skipped;
        Ok(table)
    }

    /// The row that applies at `pc`, if CFI covers it.
    pub fn find(&self, pc: u64) -> Option<&Row> {
        let i = self.rows.partition_point(|r| r.pc <= pc);
        let row = self.rows.get(i.checked_sub(1)?)?;
        (row.cfa != Cfa::End).then_some(row)
    }

    /// The number of rows (each 16 bytes in a BPF map).
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the table has no row.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

fn cfa_of(cfa: &CfaRule<usize>, ra: RegisterRule<usize>) -> Cfa {
    if matches!(ra, RegisterRule::Undefined) {
        return Cfa::Outermost;
    }
    match *cfa {
        CfaRule::RegisterAndOffset { register, offset } => match i32::try_from(offset) {
            Ok(o) if register == X86_64::RSP => Cfa::Sp(o),
            Ok(o) if register == X86_64::RBP => Cfa::Bp(o),
            _ => Cfa::Unsupported,
        },
        CfaRule::Expression(_) => Cfa::Unsupported,
    }
}

/// A mapped object: the addresses `start..end` of the running process hold the object whose
/// virtual address `v` is at `v + bias`.
#[derive(Clone, Copy, Debug)]
pub struct Module<'a> {
    /// The first mapped address.
    pub start: u64,
    /// One past the last mapped address.
    pub end: u64,
    /// The process's address minus the object's virtual address.
    pub bias: u64,
    /// The object's rows.
    pub table: &'a Table,
}

/// The registers a walk starts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Regs {
    /// The instruction pointer (at a uprobe: the probed function's first instruction).
    pub ip: u64,
    /// The stack pointer.
    pub sp: u64,
    /// `rbp`.
    pub bp: u64,
}

/// Why a walk ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// At the outermost frame, whose CFI says there is no caller (or a zero return address).
    Outermost,
    /// An address in no module, or one no CFI covers.
    NoUnwindInfo(u64),
    /// CFI this table does not hold (an expression).
    Unsupported(u64),
    /// A stack slot that could not be read.
    Unreadable(u64),
    /// The walk reached `max_frames`.
    Depth,
}

/// Walks the stack from `regs`: the addresses of the frames, innermost first (the first is
/// `regs.ip`, the others return addresses), and why the walk ended. `read` reads the 8 bytes
/// at a stack address.
pub fn walk(
    modules: &[Module<'_>],
    regs: Regs,
    mut read: impl FnMut(u64) -> Option<u64>,
    max_frames: usize,
) -> (Vec<u64>, Stop) {
    let Regs {
        mut ip,
        mut sp,
        mut bp,
    } = regs;
    let mut frames = Vec::new();
    loop {
        if frames.len() == max_frames {
            return (frames, Stop::Depth);
        }
        frames.push(ip);
        // A return address is the instruction after the call: look up the call itself.
        let lookup = if frames.len() == 1 { ip } else { ip - 1 };
        let Some(module) = modules.iter().find(|m| (m.start..m.end).contains(&lookup)) else {
            return (frames, Stop::NoUnwindInfo(ip));
        };
        let Some(row) = module.table.find(lookup.wrapping_sub(module.bias)) else {
            return (frames, Stop::NoUnwindInfo(ip));
        };
        let cfa = match row.cfa {
            Cfa::Sp(o) => sp.wrapping_add_signed(o.into()),
            Cfa::Bp(o) => bp.wrapping_add_signed(o.into()),
            Cfa::Outermost => return (frames, Stop::Outermost),
            Cfa::Unsupported => return (frames, Stop::Unsupported(ip)),
            Cfa::End => return (frames, Stop::NoUnwindInfo(ip)),
        };
        let Some(ra) = read(cfa - 8) else {
            return (frames, Stop::Unreadable(cfa - 8));
        };
        if let Some(o) = row.rbp {
            let slot = cfa.wrapping_add_signed(o.into());
            let Some(saved) = read(slot) else {
                return (frames, Stop::Unreadable(slot));
            };
            bp = saved;
        }
        if ra == 0 {
            return (frames, Stop::Outermost);
        }
        sp = cfa;
        ip = ra;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_merge_and_later_rows_win() {
        let t = Table::from_rows(vec![
            Row {
                pc: 0x20,
                cfa: Cfa::End,
                rbp: None,
            },
            Row {
                pc: 0x10,
                cfa: Cfa::Sp(8),
                rbp: None,
            },
            Row {
                pc: 0x14,
                cfa: Cfa::Sp(8),
                rbp: None,
            },
            Row {
                pc: 0x20,
                cfa: Cfa::Sp(8),
                rbp: None,
            },
        ]);
        assert_eq!(t.len(), 1, "equal rules merged, the later row at 0x20 won");
        assert_eq!(t.find(0x30).unwrap().cfa, Cfa::Sp(8));
        assert!(t.find(0x0f).is_none());
    }

    #[test]
    fn a_walk_follows_sp_and_bp_rules() {
        // f (CFA = rbp + 16, rbp saved at CFA − 16) called from g (CFA = rsp + 8).
        let t = Table::from_rows(vec![
            Row {
                pc: 0x100,
                cfa: Cfa::Bp(16),
                rbp: Some(-16),
            },
            Row {
                pc: 0x200,
                cfa: Cfa::Sp(8),
                rbp: None,
            },
            Row {
                pc: 0x300,
                cfa: Cfa::Outermost,
                rbp: None,
            },
        ]);
        let m = [Module {
            start: 0x1000,
            end: 0x2000,
            bias: 0x1000,
            table: &t,
        }];
        // Stack: at 0x7f00 the saved rbp, at 0x7f08 the return address into g, at 0x7f10 the
        // return address into the outermost function.
        let stack = |a: u64| match a {
            0x7f00 => Some(0x7fa0),
            0x7f08 => Some(0x1210),
            0x7f10 => Some(0x1310),
            _ => None,
        };
        let (frames, stop) = walk(
            &m,
            Regs {
                ip: 0x1150,
                sp: 0x7ef0,
                bp: 0x7f00,
            },
            stack,
            16,
        );
        assert_eq!(frames, vec![0x1150, 0x1210, 0x1310]);
        assert_eq!(stop, Stop::Outermost);
    }
}
