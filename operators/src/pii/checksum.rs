//! The checksums that tell a bank card number (Luhn) and a resident ID number (GB 11643)
//! from other digit runs.

/// The Luhn (mod 10) check used by bank card numbers.
///
/// `digits` must consist of ASCII digits only (at least two of them, the last being the check
/// digit); anything else (spaces, dashes, letters, an empty string) returns `false`.
///
/// ```
/// use switchboard_operators::pii::luhn_valid;
/// assert!(luhn_valid("4111111111111111"));
/// assert!(!luhn_valid("4111111111111112"));
/// assert!(!luhn_valid("4111 1111 1111 1111"));
/// ```
#[must_use]
pub fn luhn_valid(digits: &str) -> bool {
    if digits.len() < 2 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 {
                    doubled - 9
                } else {
                    doubled
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// The GB 11643 checksum of an 18-character resident ID number.
///
/// `id18` must be exactly 17 ASCII digits followed by a check character, an ASCII digit or
/// `X`/`x`. The weighted sum of the first 17 digits (weights 7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7,
/// 9, 10, 5, 8, 4, 2) modulo 11 selects the expected check character from `"10X98765432"`.
/// Anything else (wrong length, separators, full-width digits) returns `false`.
///
/// ```
/// use switchboard_operators::pii::id_checksum_valid;
/// assert!(id_checksum_valid("11010519491231002X"));
/// assert!(!id_checksum_valid("110105194912310021"));
/// ```
#[must_use]
pub fn id_checksum_valid(id18: &str) -> bool {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    let bytes = id18.as_bytes();
    if bytes.len() != 18 || !bytes[..17].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let sum: u32 = bytes[..17]
        .iter()
        .zip(WEIGHTS)
        .map(|(&b, w)| u32::from(b - b'0') * w)
        .sum();
    // `sum % 11` is always < 11, so the index is in range.
    let expected = CHECK[(sum % 11) as usize];
    bytes[17].to_ascii_uppercase() == expected
}
