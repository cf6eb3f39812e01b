//! Unwinding through x86-64 functions that have no CFI, from their instructions.
//!
//! Swift `-O` on Linux emits no `.eh_frame` entry for functions it knows cannot throw
//! (`nounwind`), and keeps no frame pointer: `makeGreeter(_:_:)`, which allocates a closure
//! context, has neither, so a DWARF unwinder stops there (or, walking `rbp`, jumps somewhere
//! else) and every allocation it makes is drawn as if the process started in it. LLDB's answer
//! is an unwind plan made from the function's instructions; this is the same idea, kept small:
//! decode the function from its symbol's start up to the return address, follow what moves the
//! stack pointer (`push`, `pop`, `sub`/`add`/`lea rsp`, `mov rbp, rsp`, `leave`), and after a
//! `ret` or an unconditional `jmp` (an epilogue, or a tail call) go back to the state the body
//! had before it. What a frame cannot be worked out for (`rsp` set some other way without a frame
//! pointer) gives no rule: the stack ends there, said to be cut.

use iced_x86::{Decoder, DecoderOptions, Instruction, Mnemonic, OpKind, Register};

/// Where a frame keeps its return address and the caller's `rbp`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FrameRule {
    /// The return address's slot.
    pub base: Base,
    /// The caller's `rbp`, saved this many bytes below the return address's slot.
    pub saved_rbp: Option<u64>,
}

/// The return address's slot, as an offset from a register at the frame's return address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Base {
    /// At `rsp + n`.
    Rsp(u64),
    /// At `rbp + n` (a frame pointer was set up).
    Rbp(u64),
}

/// Most instructions followed from a function's start (a return address farther in gives no
/// rule: such functions are rare, and the scan's cost would grow with them).
const MAX_INSTRUCTIONS: usize = 20_000;

#[derive(Clone, Copy, Debug, Default)]
struct State {
    /// Bytes between `rsp` and the return address's slot (the entry `rsp`).
    depth: u64,
    /// `depth` when `rbp` was pushed, while its saved copy is live.
    rbp_saved: Option<u64>,
    /// `depth` when `mov rbp, rsp` made `rbp` the frame pointer, while it is.
    frame_pointer: Option<u64>,
    /// `rsp` was changed in a way not followed (only fatal without a frame pointer).
    lost: bool,
}

/// The rule of the frame of a function whose code (from its first instruction, at `start`)
/// is `code`, at return address `pc` (the instruction after a call), or `None` when `pc` is not
/// in `code` or the stack pointer cannot be followed up to it.
pub(crate) fn frame_rule(code: &[u8], start: u64, pc: u64) -> Option<FrameRule> {
    if pc <= start || pc - start > code.len() as u64 {
        return None;
    }
    let mut decoder = Decoder::with_ip(64, code, start, DecoderOptions::NONE);
    let mut state = State::default();
    // The state of the function's body, to go back to after an epilogue or a tail call.
    let mut body = state;
    let mut ins = Instruction::default();
    let mut seen = 0;
    while decoder.can_decode() && decoder.ip() < pc {
        seen += 1;
        if seen > MAX_INSTRUCTIONS {
            return None;
        }
        decoder.decode_out(&mut ins);
        if ins.is_invalid() {
            return None;
        }
        let shrinks = step(&mut state, &ins);
        match ins.mnemonic() {
            Mnemonic::Ret | Mnemonic::Retf | Mnemonic::Ud2 | Mnemonic::Int3 => state = body,
            Mnemonic::Jmp => state = body,
            _ if !shrinks => body = state,
            _ => {}
        }
    }
    if decoder.ip() != pc {
        // `pc` is not an instruction boundary of this function's code as decoded.
        return None;
    }
    let base = match state.frame_pointer {
        Some(at) => Base::Rbp(at),
        None if state.lost => return None,
        None => Base::Rsp(state.depth),
    };
    Some(FrameRule {
        base,
        saved_rbp: state.rbp_saved,
    })
}

/// Applies `ins` to `state`; says whether it is one of an epilogue's (gives stack back).
fn step(state: &mut State, ins: &Instruction) -> bool {
    let rsp_is_op0 = ins.op_count() > 0
        && ins.op0_kind() == OpKind::Register
        && ins.op0_register() == Register::RSP;
    let imm = || match ins.op1_kind() {
        OpKind::Immediate8to64
        | OpKind::Immediate32to64
        | OpKind::Immediate8
        | OpKind::Immediate32 => Some(ins.immediate(1)),
        _ => None,
    };
    match ins.mnemonic() {
        Mnemonic::Push => {
            state.depth += 8;
            if ins.op0_kind() == OpKind::Register && ins.op0_register() == Register::RBP {
                state.rbp_saved = Some(state.depth);
            }
            false
        }
        Mnemonic::Pushfq => {
            state.depth += 8;
            false
        }
        Mnemonic::Pop | Mnemonic::Popfq => {
            if ins.op_count() > 0
                && ins.op0_kind() == OpKind::Register
                && ins.op0_register() == Register::RBP
            {
                if state.rbp_saved == Some(state.depth) {
                    state.rbp_saved = None;
                }
                state.frame_pointer = None;
            }
            state.depth = state.depth.saturating_sub(8);
            true
        }
        Mnemonic::Sub if rsp_is_op0 => match imm() {
            Some(n) => {
                state.depth += n;
                false
            }
            None => {
                state.lost = true;
                false
            }
        },
        Mnemonic::Add if rsp_is_op0 => {
            match imm() {
                Some(n) => state.depth = state.depth.saturating_sub(n),
                None => state.lost = true,
            }
            true
        }
        Mnemonic::Lea if rsp_is_op0 => {
            let disp = ins.memory_displacement64() as i64;
            match ins.memory_base() {
                Register::RSP if ins.memory_index() == Register::None => {
                    state.depth = state.depth.wrapping_sub(disp as u64);
                }
                Register::RBP if ins.memory_index() == Register::None => {
                    match state.frame_pointer {
                        Some(at) => state.depth = at.wrapping_sub(disp as u64),
                        None => state.lost = true,
                    }
                }
                _ => state.lost = true,
            }
            disp > 0
        }
        Mnemonic::Mov
            if ins.op0_kind() == OpKind::Register
                && ins.op0_register() == Register::RBP
                && ins.op1_kind() == OpKind::Register
                && ins.op1_register() == Register::RSP =>
        {
            state.frame_pointer = Some(state.depth);
            false
        }
        Mnemonic::Mov if rsp_is_op0 => {
            if ins.op1_kind() == OpKind::Register && ins.op1_register() == Register::RBP {
                match state.frame_pointer {
                    Some(at) => state.depth = at,
                    None => state.lost = true,
                }
            } else {
                state.lost = true;
            }
            true
        }
        Mnemonic::Leave => {
            match state.frame_pointer {
                Some(at) => {
                    state.depth = at.saturating_sub(8);
                    if state.rbp_saved == Some(at) {
                        state.rbp_saved = None;
                    }
                }
                None => state.lost = true,
            }
            state.frame_pointer = None;
            true
        }
        // Anything else that writes rsp (`and rsp, -32`, `xchg`…): followed only through rbp.
        _ if rsp_is_op0 && !matches!(ins.mnemonic(), Mnemonic::Cmp | Mnemonic::Test) => {
            state.lost = true;
            false
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `makeGreeter(_:_:)` as swiftc 6.0.3 `-O` built it (no CFI, no frame pointer): pushes,
    /// then a call to swift_allocObject at 0x22, whose return address is 0x27.
    const MAKE_GREETER: &[u8] = &[
        0x41, 0x57, // push r15
        0x41, 0x56, // push r14
        0x41, 0x54, // push r12
        0x53, // push rbx
        0x50, // push rax
        0x48, 0x89, 0xd3, // mov rbx, rdx
        0x49, 0x89, 0xf6, // mov r14, rsi
        0x49, 0x89, 0xff, // mov r15, rdi
        0x48, 0x8d, 0x3d, 0xb8, 0x28, 0x00, 0x00, // lea rdi, [rip+0x28b8]
        0xbe, 0x28, 0x00, 0x00, 0x00, // mov esi, 0x28
        0xba, 0x07, 0x00, 0x00, 0x00, // mov edx, 7
        0xe8, 0x79, 0xfc, 0xff, 0xff, // call swift_allocObject
        0x49, 0x89, 0xc4, // mov r12, rax
        0x48, 0x83, 0xc4, 0x08, // add rsp, 8
        0x5b, // pop rbx
        0x41, 0x5c, // pop r12
        0x41, 0x5e, // pop r14
        0x41, 0x5f, // pop r15
        0xc3, // ret
    ];

    #[test]
    fn pushes_before_the_call_give_the_return_address_slot() {
        let start = 0x1460;
        let after_call = start + 0x27;
        assert_eq!(
            frame_rule(MAKE_GREETER, start, after_call),
            Some(FrameRule {
                base: Base::Rsp(40),
                saved_rbp: None
            })
        );
        // Not at an instruction boundary, or outside the function: no rule.
        assert_eq!(frame_rule(MAKE_GREETER, start, after_call + 1), None);
        assert_eq!(frame_rule(MAKE_GREETER, start, start + 0x1000), None);
    }

    #[test]
    fn code_after_an_epilogue_has_the_body_s_frame() {
        // A shrink-wrapped function: an early return before the prologue, then
        // push rbx; sub rsp, 0x20; call; add rsp, 0x20; pop rbx; ret; (cold path) call.
        let code: &[u8] = &[
            0x48, 0x85, 0xff, // test rdi, rdi
            0x74, 0x01, // je +1
            0xc3, // ret
            0x53, // push rbx
            0x48, 0x83, 0xec, 0x20, // sub rsp, 0x20
            0xe8, 0x00, 0x00, 0x00, 0x00, // call (return address 0x10)
            0x48, 0x85, 0xc0, // test rax, rax
            0x74, 0x06, // je cold
            0x48, 0x83, 0xc4, 0x20, // add rsp, 0x20
            0x5b, // pop rbx
            0xc3, // ret
            0xe8, 0x00, 0x00, 0x00, 0x00, // cold: call (return address 0x20)
        ];
        let rule = |pc| frame_rule(code, 0, pc).map(|r| r.base);
        assert_eq!(rule(0x10), Some(Base::Rsp(0x28)));
        assert_eq!(rule(0x20), Some(Base::Rsp(0x28)));
    }

    #[test]
    fn a_frame_pointer_is_followed_through_a_realigned_stack() {
        let code: &[u8] = &[
            0x55, // push rbp
            0x48, 0x89, 0xe5, // mov rbp, rsp
            0x48, 0x83, 0xe4, 0xe0, // and rsp, -32
            0x48, 0x81, 0xec, 0x00, 0x01, 0x00, 0x00, // sub rsp, 0x100
            0xe8, 0x00, 0x00, 0x00, 0x00, // call (return address 0x14)
        ];
        assert_eq!(
            frame_rule(code, 0, 0x14),
            Some(FrameRule {
                base: Base::Rbp(8),
                saved_rbp: Some(8)
            })
        );
        // The same without the frame pointer cannot be followed.
        let no_fp: Vec<u8> = [&code[..1], &code[4..]].concat();
        assert_eq!(frame_rule(&no_fp, 0, 0x11), None);
    }
}
