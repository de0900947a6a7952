// The exports' CSV dialect (projections/csv.h): cells a spreadsheet could run as a formula stay
// text.

#include "projections/csv.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace chorus::projections {
namespace {

TEST(Csv, CellsASpreadsheetCouldRunAsAFormulaGetAnApostrophe) {
  // Full width ＝ ＋ － ＠, small form ﹦ ﹢ ﹣ ﹫; no-break, ideographic, em and zero-width
  // spaces, byte-order mark.
  const std::string eq = "\xEF\xBC\x9D", plus = "\xEF\xBC\x8B", minus = "\xEF\xBC\x8D",
                    at = "\xEF\xBC\xA0";
  const std::string small_eq = "\xEF\xB9\xA6", small_plus = "\xEF\xB9\xA2",
                    small_minus = "\xEF\xB9\xA3", small_at = "\xEF\xB9\xAB";
  const std::string nbsp = "\xC2\xA0", ideographic = "\xE3\x80\x80", em = "\xE2\x80\x83",
                    zero_width = "\xE2\x80\x8B", bom = "\xEF\xBB\xBF";
  const std::vector<std::string> formulas = {"=1+1",
                                             "+33 1 23",
                                             "-2",
                                             "@SUM(A1)",
                                             "\t=1",
                                             "\r=1",
                                             "  =1+1",
                                             " \n@x",
                                             eq + "1+1",
                                             plus + "1",
                                             minus + "1",
                                             " " + at + "x",
                                             small_eq + "1+1",
                                             small_plus + "1",
                                             small_minus + "1",
                                             small_at + "x",
                                             nbsp + "=1+1",
                                             ideographic + "=1+1",
                                             zero_width + em + "=1",
                                             bom + "@x"};
  for (const std::string& text : formulas) {
    EXPECT_TRUE(csv_formula_like(text)) << text;
    EXPECT_TRUE(csv_cell(text).starts_with("\"'")) << text;
  }
  const std::vector<std::string> plain = {
      "",          "   ",        "Facture 1+1",           "a=b",
      "SOL-00001", "\xC3\xA9=1", "\xEF\xBC\xA1" /* Ａ */, nbsp + "Facture"};
  for (const std::string& text : plain) {
    EXPECT_FALSE(csv_formula_like(text)) << text;
    EXPECT_EQ(csv_cell(text), "\"" + text + "\"");
  }
}

TEST(Csv, QuotesAreDoubledAndLinesEndInCrlf) {
  EXPECT_EQ(csv_cell("a\"b"), "\"a\"\"b\"");
  EXPECT_EQ(csv_line({"a", "=b", "c;d"}), "\"a\";\"'=b\";\"c;d\"\r\n");
}

}  // namespace
}  // namespace chorus::projections
