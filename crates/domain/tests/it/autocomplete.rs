//! The local engine, language by language: real cases and what it suggests. `‸` marks the
//! cursor.

use duet_domain::{Completion, CompletionRequest, Language, LocalAutocompleter};

fn suggest(language: Language, marked: &str) -> Completion {
    let cursor_byte = marked.find('‸').expect("a cursor mark");
    let code = marked.replacen('‸', "", 1);
    let cursor = code[..cursor_byte].encode_utf16().count();
    let request = CompletionRequest::new(code, cursor, language).expect("a valid cursor");
    LocalAutocompleter::suggest(&request)
}

fn check(language: Language, cases: &[(&str, &str)]) {
    for (marked, expected) in cases {
        let completion = suggest(language, marked);
        assert_eq!(
            completion.suggestion, *expected,
            "{language}: {marked:?} (alternatives {:?})",
            completion.alternatives
        );
    }
}

#[test]
fn python() {
    check(
        Language::Python,
        &[
            (
                "def total_price(items):\n    return sum(items)\n\nprint(tot‸",
                "al_price",
            ),
            ("pri‸", "nt"),
            ("for‸", " item in items:\n    "),
            ("def handler():\n    if‸", " condition:\n        "),
            ("def‸", " name():\n    pass"),
            ("class‸", " Name:\n    def __init__(self):\n        pass"),
            ("print(len(items‸", "))"),
            ("name = \"Ada‸", "\""),
            ("print(‸)", ""),
            ("pri‸nt(x)", ""),
            ("x = 1  # a com‸", ""),
            ("‸", ""),
            ("re‸", "turn"),
        ],
    );
}

#[test]
fn javascript() {
    check(
        Language::JavaScript,
        &[
            ("const userName = 'a';\nconsole.log(use‸", "rName"),
            ("cons‸", "t"),
            ("function‸", " name() {\n  \n}"),
            ("  for‸", " (let i = 0; i < items.length; i++) {\n    \n  }"),
            ("const add = (a, b) =>‸", " {\n  \n}"),
            ("const $el = 1;\n$e‸", "l"),
            ("fetch(url).then((response) => respo‸", "nse"),
            ("console.log(`total‸", "`)"),
            ("items.map((x) => x * 2‸", ")"),
        ],
    );
}

#[test]
fn typescript() {
    check(
        Language::TypeScript,
        &[
            ("interface‸", " Name {\n  \n}"),
            ("let count: num‸", "ber"),
            ("type User = { id: string };\nconst u: Us‸", "er"),
            ("function‸", " name(): void {\n  \n}"),
        ],
    );
}

#[test]
fn rust() {
    check(
        Language::Rust,
        &[
            ("fn‸", " name() {\n    \n}"),
            ("    match‸", " value {\n        _ => {}\n    }"),
            ("impl‸", " Type {\n    \n}"),
            ("let total_count = 3;\nlet doubled = total_c‸", "ount"),
            ("printl‸", "n"),
            ("let v = vec![1, 2‸", "]"),
            ("fn f<'a>(x: &'a str) -> &'a str { x.trim(‸", ")"),
            ("Opt‸", "ion"),
        ],
    );
}

#[test]
fn go() {
    check(
        Language::Go,
        &[
            ("func‸", " name() {\n\t\n}"),
            ("\tif‸", " err != nil {\n\t\treturn err\n\t}"),
            ("fmt.Print‸", "f"),
            ("fmt.Printf(\"%d\", count‸", ")"),
            ("requestCount := 0\nrequestCount++\nreq‸", "uestCount"),
        ],
    );
}

#[test]
fn java() {
    check(
        Language::Java,
        &[
            ("class‸", " Name {\n    \n}"),
            ("System.out.printl‸", "n"),
            ("    for‸", " (int i = 0; i < n; i++) {\n        \n    }"),
            ("String customerName = \"x\";\nreturn custo‸", "merName"),
        ],
    );
}

#[test]
fn c() {
    check(
        Language::C,
        &[
            ("for‸", " (int i = 0; i < n; i++) {\n    \n}"),
            ("struct‸", " name {\n    \n};"),
            ("printf(\"%d\\n\", x‸", ")"),
            ("mall‸", "oc"),
            ("/* a block com‸", ""),
        ],
    );
}

#[test]
fn cpp() {
    check(
        Language::Cpp,
        &[
            ("class‸", " Name {\npublic:\n    Name();\n};"),
            ("std::vector<int> values;\nvalues.push_b‸", "ack"),
            ("nullp‸", "tr"),
            ("std::cout << \"hi‸", "\""),
        ],
    );
}

#[test]
fn plain_text() {
    check(
        Language::PlainText,
        &[
            (
                "meeting notes: remember the quarterly report\nquart‸",
                "erly",
            ),
            ("nothing to add‸", ""),
            ("(a note‸", ")"),
        ],
    );
}

#[test]
fn ranks_nearer_and_more_frequent_words_first() {
    let code = "value_far = 1\n".to_owned()
        + &"# filler\n".repeat(200)
        + "value_near = 2\nvalue_near += 1\nval‸";
    let completion = suggest(Language::Python, &code);
    assert_eq!(completion.suggestion, "ue_near");
    assert!(
        completion.alternatives.contains(&"ue_far".to_owned()),
        "{completion:?}"
    );
}

#[test]
fn counts_the_cursor_in_utf16_units() {
    let completion = suggest(Language::Python, "emoji = '😀'\nemo‸");
    assert_eq!(completion.suggestion, "ji");
}
