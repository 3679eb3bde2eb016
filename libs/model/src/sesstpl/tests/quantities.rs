//! The resource-string grammars, and their canonical forms.

use proptest::prelude::*;

use super::*;

#[test]
fn cpu_grammar() {
    let rows: &[(&str, Result<u32, &str>)] = &[
        ("2", Ok(2000)),
        ("0.5", Ok(500)),
        ("1.25", Ok(1250)),
        ("0.125", Ok(125)),
        ("02", Ok(2000)),
        ("500m", Ok(500)),
        ("1m", Ok(1)),
        ("64", Ok(64_000)),
        ("0.0001", Err("finer than a millicore")),
        ("0", Err("more than 0")),
        ("0m", Err("more than 0")),
        ("0.000", Err("more than 0")),
        ("-1", Err("must not be negative")),
        ("-0.5", Err("must not be negative")),
        ("", Err("must be a number of cores")),
        ("two", Err("must be a number of cores")),
        (".5", Err("must be a number of cores")),
        ("2.", Err("must be a number of cores")),
        ("1e3", Err("must be a number of cores")),
        (" 2", Err("must be a number of cores")),
        ("2 ", Err("must be a number of cores")),
        ("+2", Err("must be a number of cores")),
        ("2.5m", Err("must be a number of cores")),
        ("m", Err("must be a number of cores")),
        ("2g", Err("must be a number of cores")),
        ("NaN", Err("must be a number of cores")),
        ("4294968", Err("too large")),
        ("99999999999999999999999", Err("must be a number of cores")),
    ];
    for (text, want) in rows {
        match (Cpu::parse(text), want) {
            (Ok(c), Ok(m)) => assert_eq!(c.millicores(), *m, "{text:?}"),
            (Err(e), Err(fragment)) => assert!(e.contains(fragment), "{text:?}: {e}"),
            (got, _) => panic!("{text:?}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn mem_grammar() {
    let rows: &[(&str, Result<u32, &str>)] = &[
        ("4g", Ok(4096)),
        ("4G", Ok(4096)),
        ("4Gi", Ok(4096)),
        ("4GiB", Ok(4096)),
        ("4gb", Ok(4096)),
        ("2Gi", Ok(2048)),
        ("512m", Ok(512)),
        ("512Mi", Ok(512)),
        ("1.5g", Ok(1536)),
        ("0.5g", Ok(512)),
        ("1024k", Ok(1)),
        ("1048576", Ok(1)),
        ("1048576b", Ok(1)),
        ("4294967296", Ok(4096)),
        ("1t", Ok(1_048_576)),
        ("1", Err("whole number of MiB; a bare number is bytes")),
        ("4096", Err("a bare number is bytes")),
        ("1k", Err("whole number of MiB")),
        ("0.3g", Err("whole number of MiB")),
        ("0", Err("more than 0")),
        ("0g", Err("more than 0")),
        ("-4g", Err("must not be negative")),
        ("4x", Err("must be a size")),
        ("4 g", Err("must be a size")),
        ("4gib ", Err("must be a size")),
        ("4p", Err("must be a size")),
        ("4e9", Err("must be a size")),
        ("g", Err("must start with a number")),
        ("", Err("must start with a number")),
        (".5g", Err("must start with a number")),
        ("1.g", Err("must start with a number")),
        ("1.2.3g", Err("must start with a number")),
        ("4096t", Err("too large")),
    ];
    for (text, want) in rows {
        match (Mem::parse(text), want) {
            (Ok(m), Ok(mib)) => assert_eq!(m.mib(), *mib, "{text:?}"),
            (Err(e), Err(fragment)) => assert!(e.contains(fragment), "{text:?}: {e}"),
            (got, _) => panic!("{text:?}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn canonical_forms() {
    for (m, want) in [(2000, "2"), (500, "0.5"), (1250, "1.25"), (125, "0.125"), (1, "0.001"), (2100, "2.1")] {
        assert_eq!(Cpu::from_millicores(m).expect("valid in this test").to_string(), want);
    }
    for (mib, want) in [(4096, "4g"), (512, "512m"), (1536, "1536m"), (1024, "1g"), (1, "1m")] {
        assert_eq!(Mem::from_mib(mib).expect("valid in this test").to_string(), want);
    }
    assert_eq!(Cpu::from_millicores(0), None);
    assert_eq!(Mem::from_mib(0), None);
}

proptest! {
    #[test]
    fn canonical_forms_read_back(m in 1u32.., mib in 1u32..) {
        let cpu = Cpu::from_millicores(m).expect("valid in this test");
        prop_assert_eq!(Cpu::parse(&cpu.to_string()), Ok(cpu));
        let mem = Mem::from_mib(mib).expect("valid in this test");
        prop_assert_eq!(Mem::parse(&mem.to_string()), Ok(mem));
    }

    #[test]
    fn parsers_never_panic(s in "\\PC{0,24}") {
        let _ = Cpu::parse(&s);
        let _ = Mem::parse(&s);
    }
}
