//! Latency of the local completion engine per suggestion, for each language on buffers of
//! 1 kB, 100 kB and 1 MB: `cargo bench -p duet-domain --bench autocomplete` (or `make bench`).
//! Prints p50, p99 and the maximum over many suggestions at cursors spread through the buffer,
//! each after a partly typed identifier (the costly case: the whole buffer is scanned). The
//! time covers resolving the UTF-16 cursor and computing the suggestion.

use std::hint::black_box;
use std::time::{Duration, Instant};

use duet_domain::{CompletionRequest, Language, LocalAutocompleter};

fn sample(language: Language) -> &'static str {
    match language {
        Language::Python => {
            "def handle_request(request, retries=3):\n    for attempt in range(retries):\n        response = client.send(request)\n        if response.status == 200:\n            return response.json()\n    raise TimeoutError(request.url)\n\n"
        }
        Language::JavaScript | Language::TypeScript => {
            "export async function loadUser(userId) {\n  const response = await fetch(`/api/users/${userId}`);\n  if (!response.ok) {\n    throw new Error(response.statusText);\n  }\n  return response.json();\n}\n\n"
        }
        Language::Rust => {
            "pub fn parse_header(line: &str) -> Option<(String, String)> {\n    let (name, value) = line.split_once(':')?;\n    Some((name.trim().to_lowercase(), value.trim().to_owned()))\n}\n\n"
        }
        Language::Go => {
            "func (s *Server) handleUser(w http.ResponseWriter, r *http.Request) {\n\tuserID := r.URL.Query().Get(\"id\")\n\tif userID == \"\" {\n\t\thttp.Error(w, \"missing id\", http.StatusBadRequest)\n\t\treturn\n\t}\n}\n\n"
        }
        Language::Java => {
            "public final class UserService {\n    private final Map<String, User> usersById = new HashMap<>();\n    public Optional<User> findUser(String userId) {\n        return Optional.ofNullable(usersById.get(userId));\n    }\n}\n\n"
        }
        Language::C | Language::Cpp => {
            "static int parse_number(const char *text, size_t length, long *result) {\n    char buffer[64];\n    if (length >= sizeof(buffer)) {\n        return -1;\n    }\n    memcpy(buffer, text, length);\n    buffer[length] = '\\0';\n    *result = strtol(buffer, NULL, 10);\n    return 0;\n}\n\n"
        }
        Language::PlainText => {
            "Meeting notes: the quarterly report is due on Friday; the release train leaves on Monday, and every team reviews its open incidents first.\n\n"
        }
    }
}

/// A buffer of about `size` bytes, and the byte offsets just after two letters of a word.
fn buffer(language: Language, size: usize) -> (String, Vec<usize>) {
    let piece = sample(language);
    let text = piece.repeat(size / piece.len() + 1);
    let text = text[..text.floor_char_boundary(size)].to_owned();
    let bytes = text.as_bytes();
    let cursors = (1..bytes.len())
        .filter(|&at| {
            bytes[at - 1].is_ascii_alphabetic()
                && at >= 2
                && bytes[at - 2].is_ascii_alphabetic()
                && (at < 3 || !bytes[at - 3].is_ascii_alphanumeric())
        })
        .collect();
    (text, cursors)
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index]
}

fn main() {
    println!("local autocomplete, per suggestion (µs)");
    println!(
        "{:<11} {:>8} {:>9} {:>9} {:>9}",
        "language", "size", "p50", "p99", "max"
    );
    for language in Language::ALL {
        for (label, size, samples) in [
            ("1 kB", 1_000, 2_000),
            ("100 kB", 100_000, 1_000),
            ("1 MB", 1_000_000, 100),
        ] {
            let (text, cursors) = buffer(language, size);
            let step = (cursors.len() / samples).max(1);
            let mut times = Vec::with_capacity(samples);
            for &cursor in cursors.iter().step_by(step).take(samples) {
                let units = text[..cursor].encode_utf16().count();
                let code = text.clone();
                // Timed: resolving the UTF-16 cursor and the suggestion, as a request costs.
                let started = Instant::now();
                let request = CompletionRequest::new(code, units, language).expect("valid");
                black_box(LocalAutocompleter::suggest(black_box(&request)));
                times.push(started.elapsed());
            }
            times.sort_unstable();
            let micros = |d: Duration| d.as_secs_f64() * 1e6;
            println!(
                "{:<11} {:>8} {:>9.1} {:>9.1} {:>9.1}",
                language.as_str(),
                label,
                micros(percentile(&times, 0.5)),
                micros(percentile(&times, 0.99)),
                micros(*times.last().expect("samples"))
            );
        }
    }
}
