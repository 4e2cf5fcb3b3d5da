//! Token counting and splitting with a real BPE (`o200k_base`, the GPT-4o family's), so
//! usage figures and stream chunking look like a real model's, whatever the provider.

use tiktoken_rs::{CoreBPE, o200k_base_singleton};

fn bpe() -> &'static CoreBPE {
    o200k_base_singleton()
}

/// Loads the vocabulary now, so the first request is not the one that pays for it.
pub fn warm_up() {
    let _ = bpe();
}

pub fn count(text: &str) -> u32 {
    bpe().encode_ordinary(text).len() as u32
}

/// Splits `text` into the pieces a model would emit token by token. Pieces end on UTF-8
/// boundaries (a character spanning several tokens stays whole) and concatenate to `text`.
pub fn split(text: &str) -> Vec<String> {
    let bpe = bpe();
    let mut pieces = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    for token in bpe.encode_ordinary(text) {
        match bpe.decode_bytes(&[token]) {
            Ok(bytes) => pending.extend_from_slice(&bytes),
            Err(_) => continue,
        }
        if let Ok(piece) = std::str::from_utf8(&pending) {
            pieces.push(piece.to_owned());
            pending.clear();
        }
    }
    if !pending.is_empty() {
        pieces.push(String::from_utf8_lossy(&pending).into_owned());
    }
    pieces
}

/// Cuts `text` to at most `max` tokens; the flag says whether anything was cut.
pub fn truncate(text: &str, max: u32) -> (String, bool) {
    let pieces = split(text);
    if pieces.len() as u32 <= max {
        return (text.to_owned(), false);
    }
    (pieces[..max as usize].concat(), true)
}

/// Prompt tokens of a chat, by OpenAI's published accounting: each message costs its
/// content and role plus 3 framing tokens (one more with a `name`), and the reply is
/// primed with 3 more.
pub fn chat_prompt<'a>(
    messages: impl IntoIterator<Item = (&'a str, &'a str, Option<&'a str>)>,
) -> u32 {
    let mut total = 3;
    for (role, content, name) in messages {
        total += 3 + count(role) + count(content);
        if let Some(name) = name {
            total += 1 + count(name);
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_like_o200k() {
        // Reference: tiktoken o200k_base encodes "hello world" as 2 tokens.
        assert_eq!(count("hello world"), 2);
        assert_eq!(count(""), 0);
    }

    #[test]
    fn split_pieces_rebuild_the_text_even_across_multibyte_characters() {
        for text in [
            "The quick brown fox.",
            "héllo wörld 日本語のテキスト 🦀🦀",
            "",
        ] {
            let pieces = split(text);
            assert_eq!(pieces.concat(), text);
            assert!(pieces.len() as u32 <= count(text).max(1));
        }
        assert!(split("one two three four").len() >= 4);
    }

    #[test]
    fn truncates_to_a_token_budget() {
        let (cut, truncated) = truncate("one two three four five", 2);
        assert!(truncated);
        assert_eq!(count(&cut), 2);
        assert_eq!(truncate("short", 10), ("short".to_owned(), false));
    }

    #[test]
    fn chat_prompt_adds_framing() {
        let n = chat_prompt([("user", "hello world", None)]);
        assert_eq!(n, 3 + 3 + count("user") + 2);
    }
}
