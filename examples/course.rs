//! The workbook's runner: the course as exercises you make pass
//! (`exercises/`, one per lesson of the seed).
//!
//! ```sh
//! cargo run --example course -- list                 # every exercise, and whether it passes
//! cargo run --example course -- check 1              # check your exercise 1
//! cargo run --example course -- check 1 --solution   # the same checks, on the reference solution
//! cargo run --example course -- --lang zh check 1    # in Chinese
//! ```
//!
//! Each exercise has its own checker binary (`[[example]] exercise_NN` in
//! Cargo.toml, built from `exercises/NN_*/main.rs`), so an exercise you are
//! in the middle of, that does not compile, stops only its own check: this
//! runner builds and runs one binary per exercise through cargo. The
//! checks themselves are in `exercises/NN_*/check.rs`, and `cargo test`
//! runs the same ones (tests/course.rs). How the workbook works:
//! exercises/README.md.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use clap::{Parser, Subcommand};

/// The workbook: one exercise per lesson of the seed, checked against real
/// sockets.
/// 练习册: 教程的每一课一个练习, 在真实的套接字上检查。
#[derive(Parser, Debug)]
#[command(name = "course", version, verbatim_doc_comment)]
struct Options {
    /// The checker's language (default: zh if LC_ALL, LC_MESSAGES or LANG
    /// starts with zh, else en)
    /// 检查器的语言 (默认: LC_ALL、LC_MESSAGES 或 LANG 以 zh 开头则为中文)
    #[arg(
        long,
        global = true,
        value_name = "zh|en",
        value_parser = ["zh", "en"],
        hide_possible_values = true,
        verbatim_doc_comment
    )]
    lang: Option<String>,
    #[command(subcommand)]
    command: Action,
}

#[derive(Subcommand, Debug)]
enum Action {
    /// List the exercises, each with whether it passes (runs every check)
    /// 列出练习, 以及每个是否通过 (会运行所有检查)
    #[command(verbatim_doc_comment)]
    List,
    /// Build exercise N and run its checks; exits 0 only when all pass
    /// 构建练习 N 并运行它的检查; 全部通过时退出码才为 0
    #[command(verbatim_doc_comment)]
    Check {
        /// The exercise's number, as `list` shows it
        /// 练习的编号, 即 `list` 显示的编号
        #[arg(verbatim_doc_comment)]
        number: usize,
        /// Check the reference solution instead of your exercise
        /// 检查参考答案, 而不是你的练习
        #[arg(long, verbatim_doc_comment)]
        solution: bool,
    },
}

/// One exercise: `exercises/NN_name/`.
struct Exercise {
    number: usize,
    dir: PathBuf,
    name: String,
}

impl Exercise {
    /// The checker binary's name in Cargo.toml.
    fn target(&self) -> String {
        format!("exercise_{:02}", self.number)
    }

    /// The title, from the first line of its README (`# 1. English / 中文`).
    fn title(&self, zh: bool) -> String {
        let readme = std::fs::read_to_string(self.dir.join("README.md")).unwrap_or_default();
        let first = readme.lines().next().unwrap_or_default();
        let title = first.trim_start_matches('#').trim();
        let title = title.split_once(". ").map_or(title, |(_, t)| t);
        match title.split_once(" / ") {
            Some((en, zh_title)) => if zh { zh_title } else { en }.to_string(),
            None => title.to_string(),
        }
    }
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every `exercises/NN_name/` that has a checker, in order.
fn exercises() -> std::io::Result<Vec<Exercise>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(root().join("exercises"))? {
        let dir = entry?.path();
        let Some(base) = dir.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some((number, name)) = base.split_once('_') else {
            continue;
        };
        if let (Ok(number), true) = (number.parse(), dir.join("main.rs").is_file()) {
            let name = name.to_string();
            found.push(Exercise { number, dir, name });
        }
    }
    found.sort_by_key(|e| e.number);
    Ok(found)
}

/// `cargo` (the one running us, when there is one), on this crate.
fn cargo(action: &str, exercise: &Exercise) -> Command {
    let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cargo
        .arg(action)
        .arg("--quiet")
        .arg("--manifest-path")
        .arg(root().join("Cargo.toml"))
        .args(["--example", &exercise.target()]);
    // The same profile as this runner, so nothing is built twice.
    if !cfg!(debug_assertions) {
        cargo.arg("--release");
    }
    cargo
}

/// Whether the environment asks for Chinese (`LC_ALL`, `LC_MESSAGES`,
/// `LANG`, the first set), as the tour decides.
fn chinese_from_env() -> bool {
    ["LC_ALL", "LC_MESSAGES", "LANG"]
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .find(|value| !value.is_empty())
        .is_some_and(|locale| locale.starts_with("zh"))
}

fn main() -> ExitCode {
    let options = Options::parse();
    let zh = options
        .lang
        .as_deref()
        .map_or_else(chinese_from_env, |lang| lang == "zh");
    let tr = |en: &str, zh_text: &str| if zh { zh_text } else { en }.to_string();
    let exercises = match exercises() {
        Ok(exercises) => exercises,
        Err(e) => {
            eprintln!(
                "course: cannot read {}: {e}",
                root().join("exercises").display()
            );
            return ExitCode::FAILURE;
        }
    };
    let lang = if zh { "zh" } else { "en" };
    match options.command {
        Action::List => list(&exercises, lang, &tr),
        Action::Check { number, solution } => {
            let Some(exercise) = exercises.iter().find(|e| e.number == number) else {
                eprintln!(
                    "{}",
                    tr(
                        &format!("course: no exercise {number}: `list` shows them"),
                        &format!("course: 没有练习 {number}: `list` 会列出它们"),
                    )
                );
                return ExitCode::from(2);
            };
            check(exercise, solution, lang, &tr)
        }
    }
}

/// Builds every exercise's checker and runs it: one line each.
fn list(exercises: &[Exercise], lang: &str, tr: &dyn Fn(&str, &str) -> String) -> ExitCode {
    let mut passing = 0;
    let mut next = None;
    for exercise in exercises {
        let built = cargo("build", exercise)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let state = if !built.is_ok_and(|s| s.success()) {
            tr("✗ does not compile", "✗ 无法编译")
        } else {
            let out = cargo("run", exercise)
                .args(["--", "--quiet", "--lang", lang])
                .stderr(Stdio::null())
                .output();
            match out {
                Ok(out) => {
                    let count = String::from_utf8_lossy(&out.stdout).trim().to_string();
                    if out.status.success() {
                        passing += 1;
                        tr(&format!("✓ passes ({count})"), &format!("✓ 通过 ({count})"))
                    } else {
                        tr(
                            &format!("✗ {count} checks pass"),
                            &format!("✗ {count} 项检查通过"),
                        )
                    }
                }
                Err(e) => format!("✗ {e}"),
            }
        };
        if next.is_none() && state.starts_with('✗') {
            next = Some(exercise.number);
        }
        println!(
            "{:<3} {:<16} {:<24} {}",
            exercise.number,
            exercise.name,
            state,
            exercise.title(lang == "zh")
        );
    }
    println!(
        "{}",
        tr(
            &format!("{passing} of {} exercises pass.", exercises.len()),
            &format!("{} 个练习中 {passing} 个通过。", exercises.len()),
        )
    );
    if let Some(next) = next {
        println!(
            "{}",
            tr(
                &format!("next: cargo run --example course -- check {next}"),
                &format!("下一个: cargo run --example course -- check {next}"),
            )
        );
    }
    ExitCode::SUCCESS
}

/// Builds exercise N's checker (cargo's own messages on a compile error)
/// and runs it; its exit status is ours.
fn check(
    exercise: &Exercise,
    solution: bool,
    lang: &str,
    tr: &dyn Fn(&str, &str) -> String,
) -> ExitCode {
    let readme = exercise.dir.join("README.md");
    let shown = readme.strip_prefix(root()).unwrap_or(&readme);
    match cargo("build", exercise).status() {
        Ok(status) if status.success() => {}
        Ok(_) => {
            println!(
                "{}",
                tr(
                    &format!(
                        "exercise {} does not compile yet: cargo's messages above say where. ({})",
                        exercise.number,
                        shown.display()
                    ),
                    &format!(
                        "练习 {} 还不能编译: 上面 cargo 的信息指出了位置。({})",
                        exercise.number,
                        shown.display()
                    ),
                )
            );
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("course: cannot run cargo: {e}");
            return ExitCode::FAILURE;
        }
    }
    let mut run = cargo("run", exercise);
    run.args(["--", "--lang", lang]);
    if solution {
        run.arg("--solution");
    }
    match run.status() {
        Ok(status) if status.success() => ExitCode::SUCCESS,
        Ok(status) => {
            // The checker exits 0 or 1 by itself; anything else (a
            // signal, an abort's code) means the code under test ended
            // the whole process before the last check.
            if status.code() != Some(1) {
                println!(
                    "{}",
                    tr(
                        &format!(
                            "the checker stopped in the middle of a check ({status}): the code under test ended the whole process, e.g. an abort on a failed allocation of a size the peer chose, or a stack overflow. The check it stopped in is on the last line above (on a terminal; in a log, the one after the last ✓ or ✗), followed by the process's last words."
                        ),
                        &format!(
                            "检查器在一项检查的中途停止了 ({status}): 被检查的代码结束了整个进程, 例如按对方给的大小分配内存失败而 abort, 或栈溢出。它停在的那项检查在上面最后一行 (在终端里; 在日志里是最后一个 ✓ 或 ✗ 之后的那一项), 后面跟着进程最后说的话。"
                        ),
                    )
                );
            }
            if !solution {
                println!(
                    "{}",
                    tr(
                        &format!(
                            "read {} again, edit {}, and run this check again.",
                            shown.display(),
                            shown.with_file_name("exercise.rs").display()
                        ),
                        &format!(
                            "再读一遍 {}, 修改 {}, 然后再运行这个检查。",
                            shown.display(),
                            shown.with_file_name("exercise.rs").display()
                        ),
                    )
                );
            }
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("course: cannot run cargo: {e}");
            ExitCode::FAILURE
        }
    }
}
