//! Multinomial logistic regression with an L2 penalty and per-row weights, minimised by
//! argmin's L-BFGS (More-Thuente line search): the model of `models/train_head.py`
//! (scikit-learn's `LogisticRegression(C, max_iter=5000)`, lbfgs, multinomial).
//!
//! Features are standardised (mean, population standard deviation + 1e-6) on the training
//! rows, the row weights are scaled to a mean of 1 (as `train_head.py` passes them), and the
//! objective is scikit-learn's `C sum_i w_i * -ln p(y_i | x_i) + ||W||^2 / 2` divided by
//! `C n` (same minimum; the gradient test then means the same for any C and n); intercepts
//! are not penalised.
//! [`Model::export`] folds the standardisation back into weights on the raw features.

use std::sync::Mutex;

use argmin::core::{CostFunction, Executor, Gradient, State, TerminationReason, TerminationStatus};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::quasinewton::LBFGS;
use ndarray::{s, Array1, Array2, ArrayView1, ArrayView2, Axis};

/// L-BFGS stops when the gradient's L2 norm is below this (scikit-learn: `tol` 1e-4 on its
/// largest component, a weaker test), or after [`MAX_ITERS`] iterations.
pub const TOL_GRAD: f64 = 1e-4;
/// scikit-learn's `max_iter` in `train_head.py`.
pub const MAX_ITERS: u64 = 5000;
/// Corrections kept by L-BFGS (scipy's `maxcor` default, which scikit-learn uses).
const MEMORY: usize = 10;

/// A fitted model on standardised features.
#[derive(Debug, Clone)]
pub struct Model {
    /// `[classes, features]`.
    pub coef: Array2<f64>,
    pub intercept: Array1<f64>,
    pub mean: Array1<f64>,
    pub std: Array1<f64>,
    /// L-BFGS iterations, and whether it converged (else it hit [`MAX_ITERS`]).
    pub iterations: u64,
    pub converged: bool,
}

impl Model {
    /// Class probabilities of raw feature rows, `[rows, classes]`.
    pub fn predict(&self, x: ArrayView2<'_, f64>) -> Array2<f64> {
        let z = (&x - &self.mean) / &self.std;
        let mut logits = z.dot(&self.coef.t()) + &self.intercept;
        softmax_rows(&mut logits);
        logits
    }

    /// Weights and biases on the raw features: `logits = W x + b`.
    pub fn export(&self) -> (Array2<f64>, Array1<f64>) {
        let w = &self.coef / &self.std;
        let b = &self.intercept - w.dot(&self.mean);
        (w, b)
    }
}

/// What the fit needs: rows, their class (`0..classes`) and weight.
pub struct Data<'a> {
    pub x: ArrayView2<'a, f64>,
    pub y: &'a [usize],
    pub weight: ArrayView1<'a, f64>,
    pub classes: usize,
}

/// Fit with inverse penalty strength `c`, from `start` (a model of the same shape) or zeros.
/// Every class must have a row; the caller maps classes absent from a fold away.
pub fn fit(data: &Data<'_>, c: f64, start: Option<&Model>) -> Result<Model, String> {
    let (n, d) = data.x.dim();
    let k = data.classes;
    if n == 0 || data.y.len() != n || data.weight.len() != n || data.y.iter().any(|&y| y >= k) {
        return Err("no rows, or rows and labels of different lengths".into());
    }
    let mean = data.x.mean_axis(Axis(0)).ok_or("no rows")?;
    let std = data.x.std_axis(Axis(0), 0.0) + 1e-6;
    let z = (&data.x - &mean) / &std;
    let sum = data.weight.sum();
    if !(sum > 0.0 && c > 0.0 && data.weight.iter().all(|w| *w >= 0.0)) {
        return Err("weights and C must be positive".into());
    }
    let weight = &data.weight * (n as f64 / sum);
    let total = n as f64;
    let problem = Softmax { z: z.view(), y: data.y, weight: weight.view(), k, c, total, last: Mutex::new(None) };
    let mut init = Array1::zeros(k * d + k);
    if let Some(m) = start.filter(|m| m.coef.dim() == (k, d)) {
        init.slice_mut(s![..k * d]).assign(&Array1::from_iter(m.coef.iter().copied()));
        init.slice_mut(s![k * d..]).assign(&m.intercept);
    }
    let solver = LBFGS::new(MoreThuenteLineSearch::new(), MEMORY)
        .with_tolerance_grad(TOL_GRAD)
        .and_then(|s| s.with_tolerance_cost(0.0))
        .map_err(|e| e.to_string())?;
    let res = Executor::new(problem, solver)
        .configure(|state| state.param(init).max_iters(MAX_ITERS))
        .run()
        .map_err(|e| format!("L-BFGS: {e}"))?;
    let state = res.state();
    let converged = matches!(
        state.get_termination_status(),
        TerminationStatus::Terminated(TerminationReason::SolverConverged | TerminationReason::TargetCostReached)
    );
    let best = state.get_best_param().ok_or("L-BFGS returned no parameters")?;
    let coef = best.slice(s![..k * d]).to_owned().into_shape_with_order((k, d)).map_err(|e| e.to_string())?;
    let intercept = best.slice(s![k * d..]).to_owned();
    Ok(Model { coef, intercept, mean, std, iterations: state.get_iter(), converged })
}

/// A point, the cost there and the gradient there.
type Evaluated = (Array1<f64>, f64, Array1<f64>);

/// The objective over standardised rows; parameters are `[W row-major (k x d), b (k)]`.
struct Softmax<'a> {
    z: ArrayView2<'a, f64>,
    y: &'a [usize],
    weight: ArrayView1<'a, f64>,
    k: usize,
    c: f64,
    total: f64,
    /// The line search asks for the cost and then the gradient at the same point: both come
    /// from one pass, kept here.
    last: Mutex<Option<Evaluated>>,
}

impl Softmax<'_> {
    fn cost_and_gradient(&self, p: &Array1<f64>) -> (f64, Array1<f64>) {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, cost, grad)) = last.as_ref() {
            if at == p {
                return (*cost, grad.clone());
            }
        }
        let (k, d) = (self.k, self.z.ncols());
        let w = p.slice(s![..k * d]).into_shape_with_order((k, d)).expect("parameter layout");
        let b = p.slice(s![k * d..]);
        let mut probs = self.z.dot(&w.t()) + b;
        let mut loss = 0.0;
        for ((mut row, &y), &wt) in probs.rows_mut().into_iter().zip(self.y).zip(self.weight) {
            let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let lse = max + row.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
            loss += wt * (lse - row[y]);
            row.mapv_inplace(|v| (v - lse).exp());
            row[y] -= 1.0;
            row *= wt / self.total;
        }
        // probs now holds the weighted residuals G = w (P - Y) / S
        let grad_w = probs.t().dot(&self.z) + &w / (self.c * self.total);
        let grad_b = probs.sum_axis(Axis(0));
        let cost = loss / self.total + w.iter().map(|v| v * v).sum::<f64>() / (2.0 * self.c * self.total);
        let mut grad = Array1::zeros(k * d + k);
        grad.slice_mut(s![..k * d]).assign(&Array1::from_iter(grad_w.iter().copied()));
        grad.slice_mut(s![k * d..]).assign(&grad_b);
        *last = Some((p.clone(), cost, grad.clone()));
        (cost, grad)
    }
}

impl CostFunction for Softmax<'_> {
    type Param = Array1<f64>;
    type Output = f64;

    fn cost(&self, p: &Self::Param) -> Result<f64, argmin::core::Error> {
        Ok(self.cost_and_gradient(p).0)
    }
}

impl Gradient for Softmax<'_> {
    type Param = Array1<f64>;
    type Gradient = Array1<f64>;

    fn gradient(&self, p: &Self::Param) -> Result<Array1<f64>, argmin::core::Error> {
        Ok(self.cost_and_gradient(p).1)
    }
}

/// Softmax of each row, in place.
pub fn softmax_rows(logits: &mut Array2<f64>) {
    for mut row in logits.rows_mut() {
        let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        row.mapv_inplace(|v| (v - max).exp());
        let sum = row.sum();
        row /= sum;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two blobs in three dimensions, the third dimension noise.
    fn blobs() -> (Array2<f64>, Vec<usize>) {
        let mut rng = fastrand::Rng::with_seed(3);
        let n = 60;
        let x = Array2::from_shape_fn((n, 3), |(i, j)| {
            let centre = if i % 2 == 0 { 1.0 } else { -1.0 };
            (if j < 2 { centre } else { 0.0 }) + rng.f64() - 0.5
        });
        (x, (0..n).map(|i| i % 2).collect())
    }

    #[test]
    fn separates_two_blobs_and_the_gradient_vanishes_at_the_optimum() {
        let (x, y) = blobs();
        let w = Array1::ones(x.nrows());
        let data = Data { x: x.view(), y: &y, weight: w.view(), classes: 2 };
        let m = fit(&data, 1.0, None).expect("fits");
        assert!(m.converged, "{} iterations", m.iterations);
        let p = m.predict(x.view());
        let right = p.rows().into_iter().zip(&y).filter(|(r, &c)| r[c] > 0.5).count();
        assert_eq!(right, y.len(), "both blobs right");
        // exported weights on raw features give the same probabilities
        let (ew, eb) = m.export();
        let mut raw = x.dot(&ew.t()) + &eb;
        softmax_rows(&mut raw);
        assert!((raw - &p).iter().all(|v| v.abs() < 1e-9));
        // a warm start at the optimum stops at once
        let again = fit(&data, 1.0, Some(&m)).expect("fits");
        assert!(again.iterations <= 2, "{}", again.iterations);
    }

    #[test]
    fn the_gradient_is_the_cost_s_derivative() {
        let (x, y) = blobs();
        let w = Array1::from_iter((0..x.nrows()).map(|i| 0.5 + (i % 3) as f64));
        let z = x.view();
        let problem = Softmax { z, y: &y, weight: w.view(), k: 2, c: 0.7, total: w.sum(), last: Mutex::new(None) };
        let p = Array1::from_iter((0..8).map(|i| (i as f64 * 0.37).sin()));
        let (_, g) = problem.cost_and_gradient(&p);
        for i in 0..p.len() {
            let mut up = p.clone();
            up[i] += 1e-6;
            let mut down = p.clone();
            down[i] -= 1e-6;
            let numeric = (problem.cost_and_gradient(&up).0 - problem.cost_and_gradient(&down).0) / 2e-6;
            assert!((numeric - g[i]).abs() < 1e-6, "component {i}: {numeric} vs {}", g[i]);
        }
    }
}
