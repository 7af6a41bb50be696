//! The tour in both languages, its diagrams, and the two READMEs in step.

mod common;

use std::time::{Duration, Instant};

use common::{example, run_client};

/// Runs the tour in `lang`, writing its page to a temporary file; returns
/// what it printed and the page.
fn tour(lang: &str) -> (String, String) {
    let page = std::env::temp_dir().join(format!(
        "socketserver-tour-{lang}-{}.html",
        std::process::id()
    ));
    let mut command = example("tour");
    command.args(["--lang", lang, "--html"]).arg(&page);
    // The tour's own default must not leak in from the machine's locale.
    command
        .env("LANG", "C")
        .env_remove("LC_ALL")
        .env_remove("LC_MESSAGES");
    let started = Instant::now();
    let out = run_client(command);
    // The tour's budget is 10 s; a loaded CI machine gets twice that.
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    let html = std::fs::read_to_string(&page).expect("the tour wrote its page");
    let _ = std::fs::remove_file(&page);
    (out, html)
}

fn parse(html: &str) -> roxmltree::Document<'_> {
    roxmltree::Document::parse_with_options(
        html,
        roxmltree::ParsingOptions {
            allow_dtd: true,
            ..Default::default()
        },
    )
    .expect("the page is well-formed XML")
}

/// Every lesson in English: all pass, the sticky lesson draws its diagram,
/// and the page has a diagram for every lesson.
#[test]
fn the_tour_in_english() {
    let (out, html) = tour("en");
    assert!(out.contains("8 of 8 lessons went as they should"), "{out}");
    // The tour's last word points to the workbook.
    assert!(
        out.trim_end()
            .lines()
            .last()
            .is_some_and(|l| l.contains("cargo run --example course -- list")),
        "{out}"
    );
    assert!(
        out.contains("● server read 10 B \"helloworld\" ← #1 #2 粘包"),
        "{out}"
    );
    assert!(out.contains("[len 4 | header"), "{out}");
    assert!(
        out.contains("Broken: its messages arrive in pieces"),
        "{out}"
    );
    // The seed's own log lines are not translated.
    assert!(out.contains("接受新连接"), "{out}");
    let doc = parse(&html);
    let html_node = doc.root_element();
    assert_eq!(html_node.attribute("lang"), Some("en"));
    let headings: Vec<&str> = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "h2")
        .filter_map(|n| n.text())
        .collect();
    for lesson in ["1. ", "2. ", "3. ", "4. ", "5. ", "6. ", "7. ", "8. "] {
        assert!(
            headings.iter().any(|h| h.starts_with(lesson)),
            "{lesson}: {headings:?}"
        );
    }
    let svgs = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "svg")
        .count();
    assert_eq!(
        svgs, 10,
        "one per lesson, two for the sticky and chaos lessons"
    );
    let has_class = |class: &str| {
        doc.descendants()
            .any(|n| n.attribute("class") == Some(class))
    };
    assert!(has_class("sticky") && has_class("split") && has_class("part-header"));
    // The framed lesson: small frames read in their parts, not 分包.
    assert!(has_class("in-parts") && has_class("summary"));
}

/// The same tour in Chinese: every narration line changes language, the
/// results do not.
#[test]
fn the_tour_in_chinese() {
    let (out, html) = tour("zh");
    assert!(out.contains("8 课中 8 课按预期完成"), "{out}");
    assert!(out.contains("练习册"), "{out}");
    assert!(out.contains("一次 recv() 收到 \"helloworld\""), "{out}");
    assert!(
        out.contains("● 服务端 读 10 B \"helloworld\" ← #1 #2 粘包"),
        "{out}"
    );
    assert!(out.contains("[长度 4 | 报头"), "{out}");
    assert!(html.contains(">客户端</text>"));
    for english in [
        "went as they should",
        "The server greets",
        "Broken:",
        "server read",
    ] {
        assert!(!out.contains(english), "{english} in: {out}");
    }
    // Every line the tour writes is Chinese: narration, the diagram's rows,
    // the servers' and the proxy's lines, exit codes as numbers.
    let has_chinese = |line: &str| line.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c));
    let english: Vec<&str> = out
        .lines()
        .filter(|line| !line.trim().is_empty() && !has_chinese(line))
        .collect();
    assert!(english.is_empty(), "lines without Chinese: {english:#?}");
    assert!(!out.contains("Some("), "{out}");
    assert!(out.contains("退出码 0"), "{out}");
    let doc = parse(&html);
    assert_eq!(doc.root_element().attribute("lang"), Some("zh"));
}

/// Without --lang, the language comes from the environment: zh* is
/// Chinese; a bad --lang is refused.
#[test]
fn the_tour_follows_lang() {
    let mut command = example("tour");
    // `--svg` without a directory writes under target/, never into the
    // work tree the README's reader runs it in.
    command
        .arg("--svg")
        .env("LANG", "zh_CN.UTF-8")
        .env_remove("LC_ALL")
        .env_remove("LC_MESSAGES");
    let out = run_client(command);
    assert!(out.contains("8 课中 8 课按预期完成"), "{out}");
    let target = std::env::current_exe()
        .unwrap()
        .ancestors()
        .nth(3)
        .unwrap()
        .join("wire");
    assert!(out.contains(&target.display().to_string()), "{out}");
    assert!(target.join("sticky-framed.svg").is_file());
    let bad = example("tour").args(["--lang", "fr"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

/// The text of a file at the crate's root.
fn read(file: &str) -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(root.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// The lines of every fenced block in `text` opened with `fence` (```sh).
fn blocks<'a>(text: &'a str, fence: &str) -> Vec<Vec<&'a str>> {
    let mut blocks = Vec::new();
    // Inside a block: its lines when it is of the kind asked for.
    let mut inside: Option<Option<Vec<&str>>> = None;
    for line in text.lines() {
        if line.starts_with("```") {
            match inside.take() {
                Some(Some(block)) => blocks.push(block),
                Some(None) => {}
                None => inside = Some((line == fence).then(Vec::new)),
            }
            continue;
        }
        if let Some(Some(block)) = inside.as_mut() {
            block.push(line);
        }
    }
    blocks
}

/// The commands in README.md and README.zh-CN.md are the same, in order:
/// the Chinese README mirrors the English one.
#[test]
fn the_readmes_give_the_same_commands() {
    let commands = |file: &str| -> Vec<String> {
        blocks(&read(file), "```sh")
            .concat()
            .iter()
            // A command is what comes before its comment.
            .map(|line| line.split(" #").next().unwrap_or("").trim().to_string())
            .filter(|command| !command.is_empty())
            .collect()
    };
    let (en, zh) = (commands("README.md"), commands("README.zh-CN.md"));
    assert!(!zh.is_empty());
    assert_eq!(
        en, zh,
        "README.md and README.zh-CN.md give different commands"
    );
    // The README starts with two commands, the ones everyone runs, alone
    // in its first block.
    assert_eq!(
        en[..2],
        ["cargo run --example tour", "cargo test"].map(String::from)
    );
    let readme = read("README.md");
    let first = blocks(&readme, "```sh").into_iter().next();
    assert_eq!(
        first.map(|b| b.len()),
        Some(2),
        "README.md's first block: two commands"
    );
}

/// Both READMEs' quick start is `examples/quickstart.rs`, which the tests
/// build and run (tests/ctrl_c.rs), so the README's code cannot rot.
#[test]
fn the_readmes_quick_start_is_the_example() {
    let example = read("examples/quickstart.rs");
    let (_, code) = example
        .split_once("// README: from here to the end of the file is the README's code block.\n")
        .expect("the marker in examples/quickstart.rs");
    for file in ["README.md", "README.zh-CN.md"] {
        let text = read(file);
        let rust = blocks(&text, "```rust");
        assert_eq!(rust.len(), 1, "{file}: one Rust block");
        assert_eq!(rust[0].join("\n").trim(), code.trim(), "{file}");
    }
}

/// The README stays a course and a quick start (20 KB at most), its
/// examples and links lead somewhere, and so do the docs pages'.
#[test]
fn the_readmes_and_docs_hold_together() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let size = read("README.md").len();
    assert!(
        size <= 20_000,
        "README.md is {size} bytes: move detail to docs/"
    );
    let mut files = vec!["README.md".to_string(), "README.zh-CN.md".to_string()];
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(format!(
                "docs/{}",
                path.file_name().unwrap().to_str().unwrap()
            ));
        }
    }
    for file in &files {
        let text = read(file);
        let dir = root.join(file).parent().unwrap().to_path_buf();
        // Every `--example NAME` is an example.
        for (i, flag) in text.match_indices("--example ") {
            let name: String = text[i + flag.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() && name != "X" && name != "NAME" {
                assert!(
                    root.join("examples").join(format!("{name}.rs")).is_file(),
                    "{file}: --example {name}"
                );
            }
        }
        // Every relative link is a file.
        for (i, _) in text.match_indices("](") {
            let target: String = text[i + 2..].chars().take_while(|&c| c != ')').collect();
            let target = target.split('#').next().unwrap();
            if target.is_empty() || target.contains("://") {
                continue;
            }
            assert!(dir.join(target).exists(), "{file}: link to {target}");
        }
    }
}
