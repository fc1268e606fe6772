#![no_main]

use libfuzzer_sys::fuzz_target;

#[global_allocator]
static ALLOC: corral::fuzzing::CountingAlloc = corral::fuzzing::CountingAlloc;

fuzz_target!(|data: &[u8]| corral::fuzzing::client_frame(data));
