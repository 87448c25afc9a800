//! What the local engine knows of each language: keywords, common built-ins, block snippets,
//! comment and identifier rules. Snippets use `{i}` for the current line's indentation and
//! `{u}` for one more level.

use crate::Language;

pub struct Knowledge {
    pub keywords: &'static [&'static str],
    pub builtins: &'static [&'static str],
    /// (the keyword that triggers it, what follows the keyword)
    pub snippets: &'static [(&'static str, &'static str)],
    pub line_comment: Option<&'static str>,
    pub block_comments: bool,
    /// Whether `$` is part of identifiers.
    pub dollar_identifiers: bool,
    /// One level of indentation.
    pub indent_unit: &'static str,
    /// Whether single quotes delimit strings (not in Rust, where they are lifetimes or chars).
    pub single_quote_strings: bool,
}

const C_LIKE_BLOCKS: &[(&str, &str)] = &[
    ("if", " (condition) {\n{i}{u}\n{i}}"),
    ("while", " (condition) {\n{i}{u}\n{i}}"),
    ("switch", " (value) {\n{i}{u}case 0:\n{i}{u}{u}break;\n{i}{u}default:\n{i}{u}{u}break;\n{i}}"),
];

static PYTHON: Knowledge = Knowledge {
    keywords: &[
        "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class",
        "continue", "def", "del", "elif", "else", "except", "finally", "for", "from", "global",
        "if", "import", "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return",
        "try", "while", "with", "yield",
    ],
    builtins: &[
        "print", "len", "range", "enumerate", "zip", "isinstance", "str", "int", "float", "list",
        "dict", "set", "tuple", "open", "sorted", "reversed", "sum", "min", "max", "abs", "any",
        "all", "map", "filter", "input", "super", "self", "__init__", "__name__", "Exception",
        "ValueError", "TypeError", "KeyError",
    ],
    snippets: &[
        ("def", " name():\n{i}{u}pass"),
        ("class", " Name:\n{i}{u}def __init__(self):\n{i}{u}{u}pass"),
        ("for", " item in items:\n{i}{u}"),
        ("if", " condition:\n{i}{u}"),
        ("elif", " condition:\n{i}{u}"),
        ("while", " condition:\n{i}{u}"),
        ("with", " open(path) as file:\n{i}{u}"),
        ("try", ":\n{i}{u}pass\n{i}except Exception as error:\n{i}{u}raise"),
    ],
    line_comment: Some("#"),
    block_comments: false,
    dollar_identifiers: false,
    indent_unit: "    ",
    single_quote_strings: true,
};

static JAVASCRIPT: Knowledge = Knowledge {
    keywords: &[
        "async", "await", "break", "case", "catch", "class", "const", "continue", "default",
        "delete", "do", "else", "export", "extends", "false", "finally", "for", "function", "if",
        "import", "in", "instanceof", "let", "new", "null", "of", "return", "static", "super",
        "switch", "this", "throw", "true", "try", "typeof", "undefined", "var", "void", "while",
        "yield",
    ],
    builtins: &[
        "console", "log", "document", "window", "Array", "Object", "String", "Number", "Promise",
        "JSON", "Math", "Map", "Set", "Error", "parseInt", "parseFloat", "setTimeout",
        "setInterval", "fetch", "length", "push", "map", "filter", "reduce", "forEach", "then",
        "addEventListener", "querySelector", "getElementById",
    ],
    snippets: &[
        ("function", " name() {\n{i}{u}\n{i}}"),
        ("for", " (let i = 0; i < items.length; i++) {\n{i}{u}\n{i}}"),
        ("if", " (condition) {\n{i}{u}\n{i}}"),
        ("while", " (condition) {\n{i}{u}\n{i}}"),
        ("class", " Name {\n{i}{u}constructor() {\n{i}{u}}\n{i}}"),
        ("try", " {\n{i}{u}\n{i}} catch (error) {\n{i}{u}\n{i}}"),
        ("=>", " {\n{i}{u}\n{i}}"),
    ],
    line_comment: Some("//"),
    block_comments: true,
    dollar_identifiers: true,
    indent_unit: "  ",
    single_quote_strings: true,
};

static TYPESCRIPT: Knowledge = Knowledge {
    keywords: &[
        "abstract", "any", "as", "async", "await", "boolean", "break", "case", "catch", "class",
        "const", "continue", "declare", "default", "do", "else", "enum", "export", "extends",
        "false", "finally", "for", "function", "if", "implements", "import", "in", "interface",
        "keyof", "let", "never", "new", "null", "number", "private", "protected", "public",
        "readonly", "return", "static", "string", "super", "switch", "this", "throw", "true",
        "try", "type", "typeof", "undefined", "unknown", "void", "while",
    ],
    builtins: JAVASCRIPT.builtins,
    snippets: &[
        ("function", " name(): void {\n{i}{u}\n{i}}"),
        ("for", " (let i = 0; i < items.length; i++) {\n{i}{u}\n{i}}"),
        ("if", " (condition) {\n{i}{u}\n{i}}"),
        ("while", " (condition) {\n{i}{u}\n{i}}"),
        ("class", " Name {\n{i}{u}constructor() {\n{i}{u}}\n{i}}"),
        ("interface", " Name {\n{i}{u}\n{i}}"),
        ("try", " {\n{i}{u}\n{i}} catch (error) {\n{i}{u}\n{i}}"),
        ("=>", " {\n{i}{u}\n{i}}"),
    ],
    line_comment: Some("//"),
    block_comments: true,
    dollar_identifiers: true,
    indent_unit: "  ",
    single_quote_strings: true,
};

static RUST: Knowledge = Knowledge {
    keywords: &[
        "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum",
        "extern", "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move",
        "mut", "pub", "ref", "return", "self", "Self", "static", "struct", "super", "trait",
        "true", "type", "unsafe", "use", "where", "while",
    ],
    builtins: &[
        "println", "print", "format", "vec", "String", "Vec", "Option", "Some", "None", "Result",
        "Ok", "Err", "Box", "HashMap", "HashSet", "clone", "unwrap", "expect", "iter", "collect",
        "to_string", "len", "push", "into", "from", "Default", "Debug", "Clone", "assert_eq",
    ],
    snippets: &[
        ("fn", " name() {\n{i}{u}\n{i}}"),
        ("match", " value {\n{i}{u}_ => {}\n{i}}"),
        ("impl", " Type {\n{i}{u}\n{i}}"),
        ("for", " item in items {\n{i}{u}\n{i}}"),
        ("if", " condition {\n{i}{u}\n{i}}"),
        ("while", " condition {\n{i}{u}\n{i}}"),
        ("loop", " {\n{i}{u}\n{i}}"),
        ("struct", " Name {\n{i}{u}\n{i}}"),
        ("enum", " Name {\n{i}{u}\n{i}}"),
        ("trait", " Name {\n{i}{u}\n{i}}"),
    ],
    line_comment: Some("//"),
    block_comments: true,
    dollar_identifiers: false,
    indent_unit: "    ",
    single_quote_strings: false,
};

static GO: Knowledge = Knowledge {
    keywords: &[
        "break", "case", "chan", "const", "continue", "default", "defer", "else", "fallthrough",
        "for", "func", "go", "goto", "if", "import", "interface", "map", "package", "range",
        "return", "select", "struct", "switch", "type", "var", "nil", "true", "false",
    ],
    builtins: &[
        "fmt", "Println", "Printf", "Sprintf", "Errorf", "append", "len", "cap", "make", "new",
        "panic", "recover", "error", "string", "int", "int64", "float64", "bool", "byte", "rune",
        "context", "Context",
    ],
    snippets: &[
        ("func", " name() {\n{i}{u}\n{i}}"),
        ("for", " i := 0; i < n; i++ {\n{i}{u}\n{i}}"),
        ("if", " err != nil {\n{i}{u}return err\n{i}}"),
        ("switch", " value {\n{i}case 0:\n{i}default:\n{i}}"),
    ],
    line_comment: Some("//"),
    block_comments: true,
    dollar_identifiers: false,
    indent_unit: "\t",
    single_quote_strings: false,
};

static JAVA: Knowledge = Knowledge {
    keywords: &[
        "abstract", "boolean", "break", "byte", "case", "catch", "char", "class", "continue",
        "default", "do", "double", "else", "enum", "extends", "final", "finally", "float", "for",
        "if", "implements", "import", "instanceof", "int", "interface", "long", "new", "null",
        "package", "private", "protected", "public", "return", "short", "static", "super",
        "switch", "this", "throw", "throws", "true", "false", "try", "void", "while",
    ],
    builtins: &[
        "System", "out", "println", "String", "Integer", "List", "ArrayList", "Map", "HashMap",
        "Override", "Exception", "RuntimeException", "Object", "length", "size", "equals",
        "toString", "hashCode",
    ],
    snippets: &[
        ("class", " Name {\n{i}{u}\n{i}}"),
        ("for", " (int i = 0; i < n; i++) {\n{i}{u}\n{i}}"),
        ("if", C_LIKE_BLOCKS[0].1),
        ("while", C_LIKE_BLOCKS[1].1),
        ("switch", C_LIKE_BLOCKS[2].1),
        ("try", " {\n{i}{u}\n{i}} catch (Exception error) {\n{i}{u}\n{i}}"),
    ],
    line_comment: Some("//"),
    block_comments: true,
    dollar_identifiers: false,
    indent_unit: "    ",
    single_quote_strings: false,
};

static C: Knowledge = Knowledge {
    keywords: &[
        "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else",
        "enum", "extern", "float", "for", "goto", "if", "inline", "int", "long", "register",
        "return", "short", "signed", "sizeof", "static", "struct", "switch", "typedef", "union",
        "unsigned", "void", "volatile", "while", "NULL",
    ],
    builtins: &[
        "printf", "fprintf", "sprintf", "snprintf", "malloc", "calloc", "realloc", "free",
        "memcpy", "memset", "strlen", "strcmp", "strcpy", "size_t", "stdout", "stderr", "main",
        "include", "define",
    ],
    snippets: &[
        ("for", " (int i = 0; i < n; i++) {\n{i}{u}\n{i}}"),
        ("if", C_LIKE_BLOCKS[0].1),
        ("while", C_LIKE_BLOCKS[1].1),
        ("switch", C_LIKE_BLOCKS[2].1),
        ("struct", " name {\n{i}{u}\n{i}};"),
    ],
    line_comment: Some("//"),
    block_comments: true,
    dollar_identifiers: false,
    indent_unit: "    ",
    single_quote_strings: false,
};

static CPP: Knowledge = Knowledge {
    keywords: &[
        "auto", "bool", "break", "case", "catch", "char", "class", "const", "constexpr",
        "continue", "default", "delete", "do", "double", "else", "enum", "explicit", "false",
        "float", "for", "friend", "if", "inline", "int", "long", "namespace", "new", "nullptr",
        "operator", "private", "protected", "public", "return", "static", "struct", "switch",
        "template", "this", "throw", "true", "try", "typename", "using", "virtual", "void",
        "while",
    ],
    builtins: &[
        "std", "cout", "cin", "endl", "string", "vector", "map", "unordered_map", "unique_ptr",
        "shared_ptr", "make_unique", "make_shared", "size", "push_back", "begin", "end",
        "include", "main",
    ],
    snippets: &[
        ("for", " (int i = 0; i < n; i++) {\n{i}{u}\n{i}}"),
        ("if", C_LIKE_BLOCKS[0].1),
        ("while", C_LIKE_BLOCKS[1].1),
        ("switch", C_LIKE_BLOCKS[2].1),
        ("class", " Name {\n{i}public:\n{i}{u}Name();\n{i}};"),
        ("struct", " Name {\n{i}{u}\n{i}};"),
        ("try", " {\n{i}{u}\n{i}} catch (const std::exception& error) {\n{i}{u}\n{i}}"),
    ],
    line_comment: Some("//"),
    block_comments: true,
    dollar_identifiers: false,
    indent_unit: "    ",
    single_quote_strings: false,
};

static PLAIN_TEXT: Knowledge = Knowledge {
    keywords: &[],
    builtins: &[],
    snippets: &[],
    line_comment: None,
    block_comments: false,
    dollar_identifiers: false,
    indent_unit: "    ",
    single_quote_strings: false,
};

pub fn of(language: Language) -> &'static Knowledge {
    match language {
        Language::Python => &PYTHON,
        Language::JavaScript => &JAVASCRIPT,
        Language::TypeScript => &TYPESCRIPT,
        Language::Rust => &RUST,
        Language::Go => &GO,
        Language::Java => &JAVA,
        Language::C => &C,
        Language::Cpp => &CPP,
        Language::PlainText => &PLAIN_TEXT,
    }
}
