//! Reading settings given as text (environment variables): the shapes both binaries share,
//! with a reason fit to follow the variable's name in an error.

/// A whole number at least `min`; `default` when the value is absent.
pub fn whole_number(value: Option<&str>, default: u64, min: u64) -> Result<u64, String> {
    match value {
        None => Ok(default),
        Some(v) => match v.trim().parse::<u64>() {
            Ok(n) if n >= min => Ok(n),
            _ => Err(format!("{v:?} is not a whole number >= {min}")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_numbers_have_a_floor_and_a_default() {
        assert_eq!(whole_number(None, 7, 1), Ok(7));
        assert_eq!(whole_number(Some(" 12 "), 7, 1), Ok(12));
        assert_eq!(whole_number(Some("0"), 7, 0), Ok(0));
        for bad in ["0", "-1", "1.5", "x", ""] {
            let err = whole_number(Some(bad), 7, 1).unwrap_err();
            assert!(err.contains(">= 1"), "{err}");
        }
    }
}
