//! AMQP topic matching: words separated by `.`, `*` matches exactly one word and `#`
//! matches zero or more.

/// True when `routing_key` matches the binding `pattern`.
pub(crate) fn matches(pattern: &str, routing_key: &str) -> bool {
    let pattern: Vec<&str> = pattern.split('.').collect();
    let key: Vec<&str> = routing_key.split('.').collect();
    match_words(&pattern, &key)
}

fn match_words(pattern: &[&str], key: &[&str]) -> bool {
    match pattern.split_first() {
        None => key.is_empty(),
        Some((&"#", rest)) => (0..=key.len()).any(|skip| match_words(rest, &key[skip..])),
        Some((&word, rest)) => match key.split_first() {
            Some((&k, key_rest)) if word == "*" || word == k => match_words(rest, key_rest),
            _ => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn topic_table() {
        let cases = [
            ("pod.a.AVAILABLE", "pod.a.AVAILABLE", true),
            ("pod.a.*", "pod.a.AVAILABLE", true),
            ("pod.a.*", "pod.a.b.c", false),
            ("pod.a.*", "pod.a", false),
            ("pod.#", "pod", true),
            ("pod.#", "pod.a.b.c", true),
            ("#", "anything.at.all", true),
            ("#.STOPPED", "pod.t.STOPPED", true),
            ("#.STOPPED", "pod.t.AVAILABLE", false),
            ("pod.*.STOPPED", "pod.t.STOPPED", true),
            ("pod.*.STOPPED", "pod.STOPPED", false),
            ("pod.#.x", "pod.x", true),
            ("a", "b", false),
            ("", "", true),
        ];
        for (pattern, key, want) in cases {
            assert_eq!(matches(pattern, key), want, "{pattern} vs {key}");
        }
    }
}
