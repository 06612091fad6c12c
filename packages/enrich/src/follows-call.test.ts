import { describe, expect, it } from 'vitest';
import { followsCall } from './symbols.js';

const X86_64 = 62;
const AARCH64 = 183;
/** 8 bytes before a return address: filler, then the instruction. */
const x86 = (...insn: number[]) => Uint8Array.from([...Array(8 - insn.length).fill(0xcc), ...insn]);
const arm = (insn: number) => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setUint32(4, insn, true);
  return b;
};

describe('followsCall: is the instruction before an address a call?', () => {
  it('x86-64: call rel32 and every call r/m64 form end right before a return address', () => {
    expect(followsCall(X86_64, x86(0xe8, 0x10, 0x20, 0x30, 0x40))).toBe(true); // call rel32
    expect(followsCall(X86_64, x86(0xff, 0xd0))).toBe(true); // call rax
    expect(followsCall(X86_64, x86(0x41, 0xff, 0xd4))).toBe(true); // call r12
    expect(followsCall(X86_64, x86(0xff, 0x15, 1, 2, 3, 4))).toBe(true); // call [rip+disp32] (PLT-less)
    expect(followsCall(X86_64, x86(0xff, 0x54, 0x24, 0x08))).toBe(true); // call [rsp+8]
    expect(followsCall(X86_64, x86(0xff, 0x50, 0x10))).toBe(true); // call [rax+16]
    expect(followsCall(X86_64, x86(0xff, 0x90, 1, 2, 3, 4))).toBe(true); // call [rax+disp32]
  });

  it('x86-64: data and other instructions are not calls', () => {
    expect(followsCall(X86_64, Buffer.from(' 200 ok\r'))).toBe(false); // an HTTP status line
    expect(followsCall(X86_64, x86(0xff, 0xe0))).toBe(false); // jmp rax (FF /4)
    expect(followsCall(X86_64, x86(0xc3))).toBe(false); // ret
    expect(followsCall(X86_64, x86(0xff, 0x15, 1, 2, 3))).toBe(false); // disp32 cut short
    expect(followsCall(X86_64, new Uint8Array(8))).toBe(false);
  });

  it('arm64: BL, BLR and BLRAA are calls; RET and B are not', () => {
    expect(followsCall(AARCH64, arm(0x94000123))).toBe(true); // bl
    expect(followsCall(AARCH64, arm(0xd63f0020))).toBe(true); // blr x1
    expect(followsCall(AARCH64, arm(0xd73f0820))).toBe(true); // blraa x1, x0
    expect(followsCall(AARCH64, arm(0xd65f03c0))).toBe(false); // ret
    expect(followsCall(AARCH64, arm(0x14000123))).toBe(false); // b
  });

  it('says nothing for other machines or too few bytes', () => {
    expect(followsCall(40, x86(0xe8, 0, 0, 0, 0))).toBeUndefined(); // ARM (32-bit)
    expect(followsCall(AARCH64, new Uint8Array(2))).toBeUndefined();
  });
});
