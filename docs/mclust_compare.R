# Compare fastgmm with R's mclust on the same data (see docs/model-based-clustering.md).
#
#   Rscript docs/mclust_compare.R data.csv out/        # needs: install.packages("mclust")
#   python docs/mclust_compare.py data.csv out/
#
# data.csv: numeric columns with a header. Writes, into out/:
#   bic.csv       mclustBIC(X): rows G = 1..9, columns the 14 models (NA where mclust
#                 could not fit a model)
#   z.csv         a start: the hard classification of hc() (mclust's default start)
#                 for G = 3, as a 0/1 matrix
#   path_<M>.csv  for every model M, the log-likelihood after each of the first 200
#                 iterations of me(modelName = M, z = z) (EM tolerance 0, inner
#                 tolerance sqrt(eps), mclust's default)
library(mclust)
args <- commandArgs(trailingOnly = TRUE)
X <- as.matrix(read.csv(args[1]))
out <- args[2]
dir.create(out, showWarnings = FALSE)

b <- mclustBIC(X)
write.csv(matrix(as.numeric(b), nrow = nrow(b), dimnames = dimnames(b)),
          file.path(out, "bic.csv"))

G <- 3
z <- unmap(hclass(hc(X, modelName = "VVV"), G))
write.csv(z, file.path(out, "z.csv"), row.names = FALSE)
for (M in mclust.options("emModelNames")) {
  lls <- c()
  for (it in 1:200) {  # me() reports only the last log-likelihood: rerun with itmax
    fit <- me(X, modelName = M, z = z, control = emControl(itmax = c(it, .Machine$integer.max), tol = c(0, sqrt(.Machine$double.eps))))
    lls <- c(lls, fit$loglik)
  }
  write.csv(data.frame(iteration = seq_along(lls), loglik = lls),
            file.path(out, paste0("path_", M, ".csv")), row.names = FALSE)
}
