//! Text from peers that people will read: which characters may be shown,
//! and when two names are the same name.
//!
//! A name a client chooses ends up on someone else's screen: in a file
//! listing, or beside every line it says in the chat room. Two problems
//! follow. Some characters do not show as themselves: control characters
//! move a terminal's cursor, bidi overrides reorder what comes after
//! them, zero-width characters hide a difference. And many different
//! strings look alike: `alice`, `ALICE`, `ａｌｉｃｅ` (fullwidth),
//! `аlice` (its first letter Cyrillic). The file service and the chat
//! room refuse the first kind with [`shows_safely`]; the chat room
//! compares names by [`name_key`], which folds the second kind together.
//! Lines of chat lose their bidi controls ([`is_bidi_control`]) as they
//! lose other control characters.

use unicode_normalization::UnicodeNormalization;

/// Whether `c` may appear in a name: it shows as itself on a terminal and
/// in a listing. Refused are control characters (C0, DEL, C1: they move
/// the cursor or recolor a terminal, and each grows to six bytes in JSON),
/// format characters (bidi overrides and isolates that reorder what is
/// shown, zero-width spaces and joiners that hide a difference, the BOM,
/// soft hyphen), line and paragraph separators, invisible fillers, and
/// noncharacters.
pub(crate) fn shows_safely(c: char) -> bool {
    if c.is_control() {
        return false;
    }
    let u = u32::from(c);
    // Noncharacters: U+FDD0..U+FDEF and the last two of every plane.
    if (0xFDD0..=0xFDEF).contains(&u) || u & 0xFFFE == 0xFFFE {
        return false;
    }
    !matches!(
        u,
        // Format (Cf) characters, Unicode 15.1.
        0x00AD
            | 0x0600..=0x0605
            | 0x061C
            | 0x06DD
            | 0x070F
            | 0x0890..=0x0891
            | 0x08E2
            | 0x180E
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x2064
            | 0x2066..=0x206F
            | 0xFEFF
            | 0xFFF9..=0xFFFB
            | 0x110BD
            | 0x110CD
            | 0x13430..=0x1343F
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0001
            | 0xE0020..=0xE007F
            // Line and paragraph separators (Zl, Zp).
            | 0x2028..=0x2029
            // Invisible: combining grapheme joiner, Hangul and Khmer fillers,
            // Mongolian variation selectors.
            | 0x034F
            | 0x115F..=0x1160
            | 0x17B4..=0x17B5
            | 0x180B..=0x180D
            | 0x180F
            | 0x3164
            | 0xFFA0
    )
}

/// Whether `c` is a bidi control: the marks (LRM, RLM, ALM), embeddings,
/// overrides and isolates that reorder the text after them. A chat line
/// loses them, so that `alice: hi` cannot be made to show as something
/// alice did not write (or make the next lines show backwards).
pub(crate) fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// The form in which two names are compared: equal keys, the same name.
///
/// * NFKC, then case-folded, then NFKC again (Unicode's `NFKC_Casefold`,
///   with `to_lowercase` plus the two full foldings that differ from it,
///   `ß` to `ss` and final `ς` to `σ`): `ALICE`, `ａｌｉｃｅ` and `𝐚𝐥𝐢𝐜𝐞`
///   are `alice`.
/// * White space at either end dropped, runs of it inside made one space.
/// * A confusables skeleton for the scripts that matter most: the
///   Cyrillic and Greek letters whose small or capital form looks like a
///   Latin letter are that letter (`аlice` with a Cyrillic `а`, `ΑLICE`
///   with a Greek capital alpha), accents kept (`ё` is `ë`). NFKC alone
///   keeps them apart: they are different letters that only look alike.
///   Not folded: look-alikes within Latin and digits (`l` and `I`, `0`
///   and `O`), which a terminal's font tells apart, and other scripts.
pub(crate) fn name_key(name: &str) -> String {
    let mut folded = String::with_capacity(name.len());
    for c in name.nfkc().flat_map(char::to_lowercase) {
        match c {
            'ß' => folded.push_str("ss"),
            'ς' => folded.push('σ'),
            _ => folded.push(c),
        }
    }
    let spaced = folded.split_whitespace().collect::<Vec<_>>().join(" ");
    spaced
        .nfkc()
        .collect::<String>()
        .nfd()
        .map(skeleton)
        .nfc()
        .collect()
}

/// A Cyrillic or Greek letter (small, after folding) that looks like a
/// Latin one, as that Latin letter; anything else as itself.
fn skeleton(c: char) -> char {
    match c {
        // Cyrillic.
        'а' => 'a',
        'в' => 'b',
        'е' => 'e',
        'һ' | 'н' => 'h',
        'і' | 'ӏ' => 'i',
        'ј' => 'j',
        'к' => 'k',
        'м' => 'm',
        'о' => 'o',
        'р' => 'p',
        'ԛ' => 'q',
        'с' => 'c',
        'ѕ' => 's',
        'т' => 't',
        'у' | 'ү' => 'y',
        'х' => 'x',
        'ԁ' => 'd',
        'ԝ' => 'w',
        // Greek.
        'α' => 'a',
        'β' => 'b',
        'ε' => 'e',
        'ζ' => 'z',
        'η' => 'h',
        'ι' => 'i',
        'κ' => 'k',
        'μ' => 'm',
        'ν' => 'n',
        'ο' => 'o',
        'ρ' => 'p',
        'τ' => 't',
        'υ' => 'y',
        'χ' => 'x',
        _ => c,
    }
}

#[cfg(test)]
mod tests {
    use super::{is_bidi_control, name_key, shows_safely};

    #[test]
    fn what_cannot_be_shown_is_refused_and_text_is_not() {
        for c in [
            '\n',
            '\r',
            '\t',
            '\x1b',
            '\x7f',
            '\u{85}',
            '\u{9b}',
            '\u{202e}',
            '\u{2066}',
            '\u{200b}',
            '\u{200d}',
            '\u{feff}',
            '\u{2028}',
            '\u{2029}',
            '\u{ad}',
            '\u{3164}',
            '\u{fffe}',
            '\u{10ffff}',
            '\u{e0041}',
        ] {
            assert!(!shows_safely(c), "{}", c.escape_unicode());
        }
        for c in [
            'a', ' ', '"', '你', 'é', '\u{301}', '😀', '\u{fe0f}', '\u{fffd}', '-',
        ] {
            assert!(shows_safely(c), "{}", c.escape_unicode());
        }
    }

    #[test]
    fn every_bidi_control_is_one_and_nothing_else_is() {
        for c in [
            '\u{61c}', '\u{200e}', '\u{200f}', '\u{202a}', '\u{202e}', '\u{2066}', '\u{2069}',
        ] {
            assert!(is_bidi_control(c), "{}", c.escape_unicode());
            assert!(!shows_safely(c), "{}", c.escape_unicode());
        }
        for c in ['a', '\u{200d}', '\u{5d0}', '\u{627}'] {
            assert!(!is_bidi_control(c), "{}", c.escape_unicode());
        }
    }

    #[test]
    fn names_that_only_look_alike_have_one_key() {
        for same in [
            "alice",
            "ALICE",
            "Alice",
            " alice ",
            "ａｌｉｃｅ",
            "𝐚𝐥𝐢𝐜𝐞",
            "\u{430}lice",
            "\u{410}LICE",
            "\u{391}LICE",
            "al\u{456}ce",
        ] {
            assert_eq!(name_key(same), "alice", "{}", same.escape_unicode());
        }
        assert_eq!(name_key("Straße"), name_key("STRASSE"));
        assert_eq!(name_key("ΟΔΥΣΣΕΥΣ"), name_key("οδυσσευς"));
        assert_eq!(name_key("\u{451}"), name_key("\u{eb}"), "ё is ë");
        assert_eq!(name_key("a  b"), "a b");
        for other in ["alicé", "alice2", "bob", "李雷", "aIice"] {
            assert_ne!(name_key(other), "alice", "{other}");
        }
    }
}
