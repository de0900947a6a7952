// The exports' CSV dialect (api/csv.h): cells a spreadsheet could run as a formula stay text.

#include "api/csv.h"

#include <gtest/gtest.h>

#include <string>

namespace chorus::api {
namespace {

TEST(Csv, CellsASpreadsheetCouldRunAsAFormulaGetAnApostrophe) {
  // Full width: ＝ ＋ － ＠.
  const std::string eq = "\xEF\xBC\x9D", plus = "\xEF\xBC\x8B", minus = "\xEF\xBC\x8D",
                    at = "\xEF\xBC\xA0";
  for (const std::string& text :
       {std::string("=1+1"), std::string("+33 1 23"), std::string("-2"), std::string("@SUM(A1)"),
        std::string("\t=1"), std::string("\r=1"), std::string("  =1+1"), std::string(" \n@x"),
        eq + "1+1", plus + "1", minus + "1", " " + at + "x"}) {
    EXPECT_TRUE(csv_formula_like(text)) << text;
    EXPECT_TRUE(csv_cell(text).starts_with("\"'")) << text;
  }
  const std::string full_width_a = "\xEF\xBC\xA1";
  for (const std::string& text :
       {std::string(), std::string("   "), std::string("Facture 1+1"), std::string("a=b"),
        std::string("SOL-00001"), std::string("\xC3\xA9=1"), full_width_a}) {
    EXPECT_FALSE(csv_formula_like(text)) << text;
    EXPECT_EQ(csv_cell(text), "\"" + text + "\"");
  }
}

TEST(Csv, QuotesAreDoubledAndLinesEndInCrlf) {
  EXPECT_EQ(csv_cell("a\"b"), "\"a\"\"b\"");
  EXPECT_EQ(csv_line({"a", "=b", "c;d"}), "\"a\";\"'=b\";\"c;d\"\r\n");
}

}  // namespace
}  // namespace chorus::api
