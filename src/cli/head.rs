//! `head fit`: a case head fitted to an agency's labelled photos ([`crate::classify::fit`]).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde_json::Value;

use super::args::{Cli, HeadAction};
use super::Usage;
use crate::classify::fit::{self, Event};
use crate::classify::{backbone, head, Backbone, HEAD_FILE};
use crate::config::Config;

/// `head …`.
pub(crate) fn run(cli: &Cli, action: &HeadAction, out: &mut dyn Write) -> Result<()> {
    match action {
        HeadAction::Fit { .. } => fit_head(cli, action, out),
    }
}

/// The folder `--out` goes into must exist before minutes of work, not after.
fn check_out(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if path.file_name().is_none() || !dir.is_dir() {
        return Err(Usage(format!("--out {}: not a file in an existing folder", path.display())).into());
    }
    if path.is_dir() {
        return Err(Usage(format!("--out {}: is a folder; name the head file", path.display())).into());
    }
    Ok(())
}

/// The head whose recipe (groups, prior) a new head takes: `--like`, else the configured
/// head, else the shipped one.
fn template(config: &Config, like: Option<&PathBuf>) -> Result<PathBuf> {
    if let Some(p) = like {
        return Ok(p.clone());
    }
    let configured = backbone::model_path(&config.classifier)
        .map(|m| crate::classify::head_path(&config.classifier, &m))
        .ok()
        .filter(|p| p.is_file());
    configured
        .or_else(|| crate::classify::model_dirs().into_iter().map(|d| d.join(HEAD_FILE)).find(|p| p.is_file()))
        .ok_or_else(|| anyhow::anyhow!("no head to take the feature groups from: pass --like HEAD.json"))
}

fn fit_head(cli: &Cli, action: &HeadAction, out: &mut dyn Write) -> Result<()> {
    let HeadAction::Fit {
        data,
        out: out_path,
        c,
        threshold_recall,
        views,
        folds,
        repeats,
        group_folds,
        min_per_category,
        seed,
        model,
        like,
        threads,
        json,
    } = action;
    check_out(out_path)?;
    for d in data {
        if !d.is_dir() {
            return Err(Usage(format!("--data {}: not a folder", d.display())).into());
        }
    }
    let config = Config::resolve(cli.config.as_deref())?;
    let opts = fit::Options {
        data: data.clone(),
        c: *c,
        recall: *threshold_recall,
        views: *views,
        folds: *folds,
        repeats: *repeats,
        group_folds: *group_folds,
        seed: *seed,
        min_per_category: *min_per_category,
        prior_gain: None,
        max_image_bytes: config.max_image_bytes,
    };
    let like_path = template(&config, like.as_ref())?;
    let recipe =
        head::Head::load(&like_path).with_context(|| "--like: the head whose feature groups are used")?.recipe();
    let mut settings = config.classifier.clone();
    settings.model = model.clone().or(settings.model);
    settings.threads = threads.unwrap_or(settings.threads);
    let mut backbone = Backbone::load(&settings).context("classifier")?;
    let bar = progress_bar(*json);
    let fitted = fit::fit(&mut backbone, &recipe, &opts, &mut |e| match e {
        Event::Skipped(b) => bar.suspend(|| err_message!("{b}")),
        Event::Embedding { done, total } => {
            bar.set_message("embedding photos");
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        }
        Event::Fitting { done, total } => {
            bar.set_message("fitting (cross-validation folds, then the head)");
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        }
    })
    .map_err(|e| match e {
        fit::FitError::Options(m) => anyhow::Error::from(Usage(m)),
        other => anyhow::Error::from(other),
    })?;
    bar.finish_and_clear();
    let text = serde_json::to_string(&fitted.doc)? + "\n";
    crate::output::write_file(out_path, crate::output::Replace::File, |f| f.write_all(text.as_bytes()))?;
    let sha = backbone::sha256_hex(text.as_bytes());
    let mut summary = fitted.summary;
    summary["out"] = Value::from(out_path.display().to_string());
    summary["sha256"] = Value::from(sha);
    if *json {
        writeln!(out, "{summary}")?;
    } else {
        write_text(&summary, out)?;
    }
    Ok(())
}

fn progress_bar(json: bool) -> indicatif::ProgressBar {
    let bar = if std::io::stderr().is_terminal() && !json {
        indicatif::ProgressBar::new(0)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} eta {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

/// One CV line: threshold, recall, precision, personal photos taken, worst category.
fn cv_line(r: &Value) -> String {
    let worst = r["worst"].as_str().unwrap_or("");
    format!(
        "recall {:.3}, precision {:.3}, personal photos taken {:.1} %, worst category {} {:.2}",
        r["case_recall"].as_f64().unwrap_or(f64::NAN),
        r["case_precision"].as_f64().unwrap_or(f64::NAN),
        r["personal_taken"].as_f64().unwrap_or(f64::NAN) * 100.0,
        worst,
        r["categories"][worst]["correct"].as_f64().unwrap_or(f64::NAN)
    )
}

fn write_text(s: &Value, out: &mut dyn Write) -> Result<()> {
    let skipped = s["skipped"].as_array().map_or(0, Vec::len);
    writeln!(
        out,
        "wrote {} (sha256 {}) for model {}: {} photos, {} views, {} left out",
        s["out"].as_str().unwrap_or(""),
        s["sha256"].as_str().unwrap_or(""),
        s["model_sha256"].as_str().unwrap_or(""),
        s["photos"],
        s["views"],
        skipped
    )?;
    let cv = &s["cv"];
    let p = &cv["per_photo"];
    let scheme = p["scheme"].as_str().unwrap_or("");
    let own = &p["own_threshold"];
    if let Some(g) = cv.get("grouped") {
        let grouped_scheme = g["scheme"].as_str().unwrap_or("");
        writeln!(out, "threshold {} from the grouped CV, {grouped_scheme}: {}", s["threshold"], cv_line(g))?;
        writeln!(out, "per-photo CV, {scheme}, at that threshold: {}", cv_line(&p["at_grouped_threshold"]))?;
        writeln!(
            out,
            "per-photo CV at its own threshold {} (for photos from the labelled sources): {}",
            own["threshold"],
            cv_line(own)
        )?;
    } else {
        writeln!(
            out,
            "threshold {} from the per-photo CV, {scheme} (no grouped CV: source_repo names fewer than 3 sources): {}",
            s["threshold"],
            cv_line(own)
        )?;
    }
    writeln!(out, "embedding {} ms a photo; {} s in all", s["ms_per_photo_embedding"], s["seconds"]["total"])?;
    Ok(())
}
